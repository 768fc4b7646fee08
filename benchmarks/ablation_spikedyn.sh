#!/usr/bin/env bash
# Ablation of SpikeDyn's mechanisms (docs/papers.md): ASP, SpikeDyn, and SpikeDyn with one
# mechanism switched off (or changed) at a time. Class-incremental MNIST, N=400, 300
# training samples per digit, evaluated on 1,000 held-out training images (the validation
# split, 100 per digit: the test split stays unread), priced on the edge chip with the
# 45 nm table. Writes runs under $OUT.
# Usage: ACCEL_SIM_DATA=../shared/data bash benchmarks/ablation_spikedyn.sh [OUT]
set -euo pipefail
out=${1:-runs/ablation_spikedyn}
common=(--set data.train_samples=3000 --set data.test_samples=1000
        --set data.evaluate_on=validation --set run.checkpoint_every=0 --no-progress)
run() { name=$1; shift; accel-sim run configs/papers/spikedyn_ci400.yaml --set name=abl-$name "$@" "${common[@]}" --out "$out/$name" > /dev/null; }
run asp --set network.model=asp
run spikedyn
run no_adaptive_rates --set learning.adaptive_rates=false
run no_spurious_reduction --set learning.spurious_update_reduction=false
run no_weight_decay --set learning.weight_decay=false
run no_timestep_updates --set learning.timestep_updates=false --set learning.adaptive_rates=false \
    --set learning.spurious_update_reduction=false
run population_inhibition --set network.inhibition=population
run tau_theta_1e6 --set network.exc.tau_theta_ms=1e6
run global_adaptive_potentiation --set learning.adaptive_rates=false --set learning.adaptive_potentiation=true
echo "ablation runs in $out"
