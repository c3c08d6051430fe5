#!/usr/bin/env bash
# One node of a 2-node genlight run, started by torchrun. Run it on each node with the same arguments:
#
#   NODE_RANK=0 MASTER_ADDR=10.0.0.1 examples/scale/torchrun_2nodes.sh fit -c examples/digits/vae.yaml   # node 0
#   NODE_RANK=1 MASTER_ADDR=10.0.0.1 examples/scale/torchrun_2nodes.sh fit -c examples/digits/vae.yaml   # node 1
#
# MASTER_ADDR is node 0's address, reachable from node 1; MASTER_PORT a free port on it. NPROC_PER_NODE
# processes (one per GPU) start on each node; ACCELERATOR is cpu (gloo) or gpu (nccl). tests/test_multinode.py
# runs this script as two "nodes" on 127.0.0.1 with the CPU defaults.
set -euo pipefail
: "${NODE_RANK:?set NODE_RANK: 0 on the first node, 1 on the second}"
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-29500}
NPROC_PER_NODE=${NPROC_PER_NODE:-1}
ACCELERATOR=${ACCELERATOR:-cpu}
PYTHON=${PYTHON:-python}

exec "$PYTHON" -m torch.distributed.run \
    --nnodes 2 --nproc_per_node "$NPROC_PER_NODE" --node_rank "$NODE_RANK" \
    --master_addr "$MASTER_ADDR" --master_port "$MASTER_PORT" \
    -m genlight.cli "$@" \
    --trainer.accelerator "$ACCELERATOR" --trainer.devices "$NPROC_PER_NODE" \
    --trainer.num_nodes 2 --trainer.strategy ddp
