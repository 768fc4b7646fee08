#!/usr/bin/env bash
# Training and inference energy per sample of the surrogate network, dense vs sparse
# backward, on the edge chip (45 nm table) and on loihi_like (Davies 2018 table), at the
# activity of a trained network: one more epoch from MODEL (a trained run's model.npz),
# the chip replaying 4 training batches (1,024 samples) and 2,000 test images.
#   bash benchmarks/ssgd_energy.sh RUN/model.npz OUT_DIR
# Then: accel-sim compare OUT_DIR/edge_dense OUT_DIR/edge_sparse (and loihi_like_*).
set -euo pipefail
model="$1"; out="$2"
for chip in "edge generic_45nm" "loihi_like loihi_2018"; do
  set -- $chip
  for mode in dense sparse; do
    accel-sim run configs/papers/ssgd_fmnist200_${mode}.yaml --out "$out/${1}_${mode}" \
      --set network.init_model="$model" --set learning.epochs=1 \
      --set run.chip_batches_per_epoch=4 --set data.test_samples=2000 \
      --set hardware="$1" --set energy="$2" --no-progress
  done
done
