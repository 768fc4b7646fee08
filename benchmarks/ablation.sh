#!/usr/bin/env bash
# Ablation of FSpiNN's mechanisms (docs/papers.md): D&C, FSpiNN, and FSpiNN with one
# mechanism switched off at a time; MNIST, N=100, 6,000 training / 2,000 test samples,
# state reset, priced on the edge chip with the 45 nm table. Writes runs under $OUT.
# Usage: ACCEL_SIM_DATA=../shared/data bash benchmarks/ablation.sh [OUT]
set -euo pipefail
out=${1:-runs/ablation}
common=(--set network.state_reset=true --set data.train_samples=6000 --set data.test_samples=2000
        --set run.threads=1 --set run.checkpoint_every=0 --no-progress)
run() { name=$1; shift; accel-sim run configs/mnist_dc100.yaml --set name=abl-$name "$@" "${common[@]}" --out "$out/$name" > /dev/null; }
run dc
run fspinn --set network.model=fspinn
run no_lateral --set network.model=fspinn --set network.inhibition=population --set learning.adaptive_inhibition=false
run no_reduced_stdp --set network.model=fspinn --set learning.depression_on_pre=true
run no_timestep_updates --set network.model=fspinn --set learning.timestep_updates=false
run no_adaptive_potentiation --set network.model=fspinn --set learning.adaptive_potentiation=false
run no_adaptive_inhibition --set network.model=fspinn --set learning.adaptive_inhibition=false
run float32_weights --set network.model=fspinn --set network.weights.kind=float32
run nearest_rounding --set network.model=fspinn --set network.weights.rounding=nearest
echo "ablation runs in $out"
