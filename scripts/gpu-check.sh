#!/bin/bash
# Proves the NVML path on a real GPU: the server's metrics sampler and `switchboard agent`.
set -x
# usage: scripts/gpu-check.sh DIR, where DIR holds switchboard.gz (a build of this repo);
# the figures go to $OUT (a folder), what it prints to stdout.
cd "$1"; OUT=${OUT:-/tmp/gpu-check}; mkdir -p "$OUT"
gunzip -kf switchboard.gz && chmod +x switchboard
nvidia-smi -L; nvidia-smi --query-gpu=name,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw --format=csv
ldconfig -p | grep nvidia-ml; ls -la /usr/local/nvidia/lib64/libnvidia-ml* 2>&1 | head -3
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/nvidia/lib64
D=/tmp/sbdata; rm -rf $D
./switchboard --data-dir $D --port 3900 --metrics-interval-ms 500 > $OUT/server.log 2>&1 &
sleep 2
T=$(./switchboard token create --data-dir $D --sub ops --operator --ttl 1h)
./switchboard token create --data-dir $D --sub gpu-1 --agent --ttl 1h > /tmp/agent.token
SWITCHBOARD_TOKEN_FILE=/tmp/agent.token ./switchboard agent --server http://127.0.0.1:3900 --name gpu-1 --capabilities cuda --metrics-interval-ms 500 > $OUT/agent.log 2>&1 &
# load the GPU so utilisation, memory and power move
timeout 12 python3 -c "
import torch,time
a=torch.randn(8192,8192,device='cuda',dtype=torch.bfloat16)
t=time.time()
while time.time()-t<10: b=a@a
torch.cuda.synchronize(); print('load done')
" &
sleep 7
nvidia-smi --query-gpu=name,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw --format=csv
curl -s -H "authorization: Bearer $T" 'http://127.0.0.1:3900/api/v1/topics/metrics/history?limit=3' > $OUT/metrics.json
curl -s -H "authorization: Bearer $T" http://127.0.0.1:3900/api/v1/agents > $OUT/agents.json
curl -s -H "authorization: Bearer $T" http://127.0.0.1:3900/metrics | grep -i gpu | head -20
wait %3 2>/dev/null
head -c 3000 $OUT/metrics.json; echo; head -c 3000 $OUT/agents.json; echo
grep -i -E "nvml|gpu|nvidia" $OUT/server.log $OUT/agent.log
kill %1 %2
