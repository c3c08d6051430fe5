# `make demo`, `make test` and `make bench` each create .venv if it is missing and install genlight into it.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.genlight-installed
export WANDB_MODE ?= offline
export WANDB_SILENT ?= true

.PHONY: install test test-slow demo bench docs clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check genlight
	$(BIN)/ruff format --check genlight
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -x -q -n 2   # pytest-xdist: both cores (the suite is ~2,400 small, independent tests)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -x -q -m slow

docs: $(STAMP)
	$(BIN)/python -m mkdocs build --strict -d site   # no -q: it hides the warnings --strict counts

demo: $(STAMP)
	$(BIN)/genlight fit --config examples/digits/vae.yaml --config examples/loggers/wandb_offline.yaml
	$(BIN)/python scripts/summarize_run.py runs/vae

# `make bench` reruns every benchmark with the budget its results file states, and rewrites
# benchmarks/results/. Budgets are wall clock, so what a run gets depends on the machine's load:
#   likelihood_digits   13 families x 5 min + 2 baselines, vqvae 2 x 5 min  ~90 min
#   vae_rows            5 VAE rows, 60-100 epochs each               ~10 min
#   fid_digits          DDPM 600 s, EBM 600 s, then 3 more rows; flow matching and DDPM 1000 steps each  ~35 min
#   ddpm_bound_digits   all 249 KL terms on the 359 test images      ~1-15 min
#   gan_digits          7 adversarial families x 300 s               ~40 min
#   progan_digits       progan and dcgan x 300 s                     ~12 min
#   cyclegan_digits     4 epochs                                     ~2 min
#   text2image_digits   300 s + evaluations                          ~7 min
#   puzzlegan_digits    300 s                                        ~6 min
#   stargan_digits      StarGAN 360 s + 6 CycleGANs x 60 s           ~13 min
#   overhead            15 rounds x 4 sides x 3 epochs               ~5 min
#   fid_cost, ebm_landscape (1500 steps)                            ~4 min
#   sampling_speed      every sampler family, 2 sizes x 2 threads x 2 batches  ~15 min
#   uses_digits         ~33 trainings x 150 s, 2 at a time, then scores ~50 min (cached: reruns train what is missing)
#   uses_digits dose    11 density families x 40 s + scoring, one process  ~25 min at load 10 (cached)
#   likelihood_mnist5k  18 recipes (12 at 256 levels, 6 binarised) + baselines (~6 min)     ~4 h
#   fid_mnist5k         9 trainings, then 11 kept checkpoints scored (1000 samples each)      ~3 h
#   gan_digits 10%      7 adversarial families x 300 s on 129 training images            ~40 min
#   gan_mnist5k         7 GAN families x 1000 steps, full split and 400 images: 3-7 min of CPU a row (14-26 min wall at load 8-16)  ~1.5 h idle
# (the mnist5k budgets are the recipes' optimizer steps, sized for ~10 min on one idle thread; at load
# 1-3 the VAE row trained 16 min and its IWAE k=1000 took 18 more, DCGAN trained 23 min)
# About 3 hours on 2 CPU cores for the 8x8 part and about 7 more for the 28x28 (mnist5k) part, one
# process at a time; checkpoints shared between scripts go to runs/bench/.
# Never run by `make test` or CI. Each script takes a tiny budget for a smoke run (see its docstring).
BENCH := $(BIN)/python

bench: $(STAMP)
	$(BENCH) benchmarks/pretrained_models.py check
	$(BENCH) benchmarks/pretrained_models.py table
	$(BENCH) benchmarks/likelihood_digits.py --budget_minutes 5 --threads 1 --keep runs/bench/likelihood
	$(BENCH) benchmarks/vae_rows.py
	$(BENCH) benchmarks/fid_digits.py train ddpm --budget 600 --threads 1 --keep runs/bench/ddpm_fid.ckpt
	$(BENCH) benchmarks/fid_digits.py train ebm --budget 600 --threads 1
	$(BENCH) benchmarks/fid_digits.py add 'ddpm (ancestral, all 250 steps, EMA)' runs/bench/ddpm_fid.ckpt --threads 1 --like 'ddpm (DDIM-50, EMA)' --sample_kwargs '{"sampler": "ancestral"}' --note 'same checkpoint as the DDIM-50 row'
	$(BENCH) benchmarks/fid_digits.py add 'vae (examples/digits/vae.yaml)' runs/bench/likelihood/vae.ckpt --threads 1
	$(BENCH) benchmarks/fid_digits.py add 'maf (examples/digits/maf.yaml)' runs/bench/likelihood/maf.ckpt --threads 1
	$(BENCH) benchmarks/fid_digits.py add 'nsf (examples/digits/nsf.yaml)' runs/bench/likelihood/nsf.ckpt --threads 1
	$(BENCH) benchmarks/fid_digits.py add 'cvae (examples/digits/cvae.yaml, unconditional draws: uniform random labels)' runs/bench/likelihood/cvae.ckpt --threads 1
	$(BENCH) benchmarks/fid_digits.py train flow_matching --steps 1000 --threads 1 --suffix ' [1000 steps]'
	$(BENCH) benchmarks/fid_digits.py train ddpm --steps 1000 --threads 1 --rows DDIM --suffix ' [1000 steps]'
	$(BENCH) benchmarks/fid_digits.py add 'vqvae + Gated PixelCNN prior (examples/digits/vqvae.yaml, then vqvae_prior.yaml)' runs/bench/likelihood/vqvae_prior.ckpt --threads 1
	$(BENCH) benchmarks/ddpm_bound_digits.py runs/bench/ddpm_fid.ckpt --note 'fid_digits timed DDPM, all terms'
	$(BENCH) benchmarks/gan_digits.py --budget 300 --threads 1
	$(BENCH) benchmarks/gan_digits.py --families gan dcgan wgan_gp cgan infogan progan aae --subset 129 --budget 300 --threads 1 --merge
	$(BENCH) benchmarks/gan_tricks_digits.py --steps 2000 --threads 1
	$(BENCH) benchmarks/text2image_digits.py --budget 300 --threads 1
	$(BENCH) benchmarks/progan_digits.py --budget 300 --threads 1
	$(BENCH) benchmarks/cyclegan_digits.py --epochs 4 --batch_size 4 --threads 1 --test
	$(BENCH) benchmarks/puzzlegan_digits.py --budget 300 --threads 1
	$(BENCH) benchmarks/stargan_digits.py --budget 360 --threads 1
	$(BENCH) benchmarks/overhead.py --rounds 15 --epochs 3 --threads 1 --profile
	$(BENCH) benchmarks/fid_cost.py
	$(BENCH) benchmarks/sampling_speed.py
	$(BENCH) benchmarks/ebm_landscape.py --steps 1500
	$(BENCH) benchmarks/gpu_check.py
	$(BENCH) benchmarks/uses_digits.py --budget 150 --threads 1 --jobs 2
	$(BENCH) benchmarks/uses_digits.py dose --budget 40 --threads 1
	$(BENCH) benchmarks/likelihood_mnist5k.py --threads 1 --keep runs/bench/likelihood_mnist5k
	$(BENCH) benchmarks/fid_mnist5k.py train dcgan --threads 1
	$(BENCH) benchmarks/fid_mnist5k.py train progan --threads 1
	$(BENCH) benchmarks/fid_mnist5k.py train wgan_gp --threads 1
	$(BENCH) benchmarks/fid_mnist5k.py train cgan --threads 1
	$(BENCH) benchmarks/fid_mnist5k.py train infogan --threads 1
	$(BENCH) benchmarks/fid_mnist5k.py train gan --threads 1
	$(BENCH) benchmarks/fid_mnist5k.py train aae --threads 1
	$(BENCH) benchmarks/gan_mnist5k.py run gan dcgan wgan_gp cgan infogan progan aae --split full 10% --threads 1
	$(BENCH) benchmarks/fid_mnist5k.py train ebm --threads 1
	$(BENCH) benchmarks/uses_mnist5k.py --budget 60 --threads 1 --max_n 200
	$(BENCH) benchmarks/fid_mnist5k.py add vae runs/bench/likelihood_mnist5k/vae.ckpt --threads 1
	$(BENCH) benchmarks/fid_mnist5k.py add cvae runs/bench/likelihood_mnist5k/cvae.ckpt --threads 1
	$(BENCH) benchmarks/fid_mnist5k.py add beta_vae runs/bench/likelihood_mnist5k/beta_vae.ckpt --threads 1
	$(BENCH) benchmarks/fid_mnist5k.py add vae_vamp runs/bench/likelihood_mnist5k/vae_vamp.ckpt --threads 1
	$(BENCH) benchmarks/fid_mnist5k.py add ddpm runs/bench/likelihood_mnist5k/ddpm.ckpt --threads 1
	$(BENCH) benchmarks/fid_mnist5k.py add ddpm_ancestral runs/bench/likelihood_mnist5k/ddpm.ckpt --threads 1
	$(BENCH) benchmarks/fid_mnist5k.py add flow_matching runs/bench/likelihood_mnist5k/flow_matching.ckpt --threads 1
	$(BENCH) benchmarks/fid_mnist5k.py add realnvp runs/bench/likelihood_mnist5k/realnvp.ckpt --threads 1
	$(BENCH) benchmarks/fid_mnist5k.py add glow runs/bench/likelihood_mnist5k/glow.ckpt --threads 1
	$(BENCH) benchmarks/fid_mnist5k.py add maf runs/bench/likelihood_mnist5k/maf.ckpt --threads 1
	$(BENCH) benchmarks/fid_mnist5k.py add nsf runs/bench/likelihood_mnist5k/nsf.ckpt --threads 1
	$(BENCH) benchmarks/fid_mnist5k.py add nade runs/bench/likelihood_mnist5k/nade.ckpt --threads 1
	$(BENCH) benchmarks/fid_mnist5k.py add pixelcnn runs/bench/likelihood_mnist5k/pixelcnn.ckpt --threads 1
	$(BENCH) benchmarks/fid_mnist5k.py add gated_pixelcnn runs/bench/likelihood_mnist5k/gated_pixelcnn.ckpt --threads 1
	$(BENCH) benchmarks/fid_mnist5k.py add pixelrnn_row runs/bench/likelihood_mnist5k/pixelrnn_row.ckpt --threads 1
	$(BENCH) benchmarks/fid_mnist5k.py add pixelrnn_diag runs/bench/likelihood_mnist5k/pixelrnn_diag.ckpt --threads 1
	$(BENCH) benchmarks/fid_mnist5k.py add vqvae_prior runs/bench/likelihood_mnist5k/vqvae_prior.ckpt --threads 1
	$(BENCH) benchmarks/ddpm_solvers.py score digits runs/bench/ddpm_fid.ckpt --n 1000
	$(BENCH) benchmarks/ddpm_solvers.py time digits runs/bench/ddpm_fid.ckpt
	$(BENCH) benchmarks/ddpm_solvers.py score mnist5k runs/bench/likelihood_mnist5k/ddpm.ckpt --n 500 --rows MNIST5K
	$(BENCH) benchmarks/ddpm_solvers.py time mnist5k runs/bench/likelihood_mnist5k/ddpm.ckpt --n 50
	$(BENCH) benchmarks/conditional_samplers.py pretrained cgan-digits cvae-digits text2image-digits
	$(BENCH) benchmarks/conditional_samplers.py train-ddpm digits --steps 500 --guidance 0 1 3
	$(BENCH) benchmarks/conditional_samplers.py add cvae runs/bench/likelihood_mnist5k/cvae.ckpt --data mnist5k

clean:
	rm -rf runs wandb .pytest_cache site
