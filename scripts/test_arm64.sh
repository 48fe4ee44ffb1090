#!/usr/bin/env bash
# The aarch64 build, verified on an x86-64 machine: cross-compiles anetrain with Debian's
# g++-aarch64-linux-gnu against the arm64 -dev packages (multiarch) into build-arm64/ (the
# program is build-arm64/src/anetrain), then runs its tests under qemu-aarch64 twice:
#   -cpu max         dotprod, bf16, i8mm: the fast NEON kernels;
#   -cpu cortex-a72  none of them: the plain-NEON fallbacks.
# Installs what it needs (as setup.sh does) when it is missing. Speed is never measured here:
# an emulated time says nothing about an ARM CPU.
# Usage: bash scripts/test_arm64.sh [--build-only] [--cpus "max cortex-a72"]
set -euo pipefail
cd "$(dirname "$0")/.."
took() { printf 'test_arm64: %s took %d min %02d s\n' "$1" $((SECONDS / 60)) $((SECONDS % 60)); SECONDS=0; }
SECONDS=0
build_only=0
cpus="max cortex-a72"
while (($#)); do
  case $1 in
    --build-only) build_only=1 ;;
    --cpus) cpus=$2; shift ;;
    *) echo "test_arm64.sh: unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
  esac
  shift
done

# ---- what the cross build needs ----
HOST_PACKAGES=(g++-aarch64-linux-gnu qemu-user cmake pkg-config libcli11-dev nlohmann-json3-dev)
ARM64_PACKAGES=(libopenblas-openmp-dev libssl-dev zlib1g-dev libgtest-dev libutf8proc-dev libcpp-httplib-dev)
SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO="sudo"
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for p in "${HOST_PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
for p in "${ARM64_PACKAGES[@]}"; do installed "$p:arm64" || missing+=("$p:arm64"); done
if ((${#missing[@]})); then
  echo "test_arm64: installing ${missing[*]}"
  dpkg --print-foreign-architectures | grep -qx arm64 || $SUDO dpkg --add-architecture arm64
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ---- the build: the program and the unit tests (the C API's programs are not run here, below) ----
cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DCMAKE_BUILD_TYPE=Release -DANETRAIN_UNITY=ON >/dev/null
cmake --build build-arm64 -j"$(nproc)" --target anetrain anetrain_tests
readelf -h build-arm64/src/anetrain | grep -q 'Machine: *AArch64' || { echo "build-arm64/src/anetrain is not an aarch64 program"; exit 1; }
took "the installs and the build of build-arm64/src/anetrain"
((build_only)) && exit 0

# ---- what runs under emulation ----
# qemu runs aarch64 code 10-50x slower than this CPU runs its own, so the emulated passes leave
# out, by name, what is slow there and says nothing about ARM that the rest does not:
EXCLUDED=(
  # Programs another program starts directly, not through the emulator: the C API's test programs
  # and example (started by bash), the Python package (an x86-64 Python cannot load an arm64
  # libanetrain.so), the HF tokenizer's tool (started by node). The C API is the engine's code,
  # which the unit tests and the CLI tests run here.
  capi_c capi_example capi_static python_package tokenizer_hf_parity
  # The dashboard in a browser: the browser is x86-64 and the page is the same bytes.
  web_dashboard_browser
  # The cpu-bf16 tests again under ONEDNN_MAX_CPU_ISA=AVX2: an x86-64 oneDNN setting that an
  # aarch64 build (OpenBLAS, no oneDNN) ignores, so it repeated this pass's own CpuBf16 tests
  # (437 s of the max pass).
  gemm_bf16_avx2
  # Checks of the source tree, not of a build: the x86-64 run has them.
  layering_selftest layering_includes source_file_sizes macos_sources_syntax reference_selfcheck
  mil_seed_kernels_selfcheck
  # Training runs of hundreds of steps (minutes natively, an hour or more emulated): learning,
  # overfitting, README command 1's job, and the trainer's resume/kill/signal/NaN/disk/run-folder
  # behaviour, which is the same C++ on every architecture. train_golden_losses holds the
  # trainer's numbers here to the x86-64 run's within 1e-4.
  'train_resume.*' 'train_kill.*' train_signals train_nonfinite train_bad_data train_time_budget
  train_efficiency_report
  train_bf16_quality train_precision_cli train_run_folder train_disk_full 'train_ane_.*' train_data_parallel
  overfit_one_batch quickstart_default_job ane_sim_grad
  # The same for fine-tuning: a 500-step LoRA run with 60 generations, LoRA training on the fp16
  # simulator, its gradient check at the simulator's pace, and the reference's self-check (Python
  # alone, which the x86-64 run has). lora_parity_* holds the adapters' gradients here to 1e-4.
  train_lora train_lora_ane_sim ane_sim_lora_grad lora_reference_selfcheck
  # A run folder's tokenizer copy, chat-masked training, LoRA with dropout and over a held bf16/Q8_0
  # base: the trainer and file handling again (their kernels' parity runs here in the unit tests).
  train_run_tokenizer train_chat_masks train_lora_dropout train_lora_held_base
  # `eval` over War and Peace chunks and its float64 reference's runs, and a seed run continued by
  # the trainer: the training forward and AdamW again (5-7 min emulated); eval's and import's
  # arithmetic is the forward and optimizer that the unit tests run here.
  cli_eval eval_reference train_import_seed
  # A GGUF with Qwen3's 151,936 vocabulary rows written five times to check how add_bos_token and
  # refusals read back (35 s emulated): file logic in portable C++; the Qwen3 vocabulary's
  # tokenization through a GGUF (GgufByteLevel.Qwen3…) runs here.
  'GgufByteLevel\.BosFollowsAddBosTokenAndUnknownSplitsAreRefused'
  # A process's resident memory under qemu-user is the emulator's (its translated code included).
  'HeldBase\.MemoryGrowsByTheHeldSizeNotTheFp32Size'
  # Tests that time themselves against a native machine's pace (a live dashboard, the terminal
  # UI under tmux, a 60 s bound on a compile, metrics following a growing file).
  cli_dashboard_host cli_dashboard_load cli_tui cli_tui_controls cli_terminal_text cli_metrics cli_mil_cost
  # `ane bench` on the simulator (123 s emulated): the portable simulator's programs, which the
  # AneSim unit tests run here; the x86-64 run has the command's report.
  cli_ane_bench
  # Unit tests at full model shapes on the fp16 simulator (stories110m, qwen3-0.6b; 10-600 s
  # each emulated): the simulator is portable scalar C++, these run natively in the x86-64 pass,
  # and the same tests at small and odd shapes run here.
  'AneSimBackend\.Qwen3LayerAtT256MatchesRef' 'AneSimBackend\.Stories110mLayerAtT256MatchesRef'
  'AneSimBackend\.CompilesExactlyItsLayerPlan' 'AneSimBackend\.ProgramCountDependsOnShapeNotOnLayer'
  'AneSimBackend\.WeightsAreStagedOncePerOptimizerStep' 'AneSimBackend\.Qwen3With28LayersCompilesNinePrograms'
  'AneStrictGrid\.GqaRatiosQkNormAndBothRopeLayoutsPassStrict'
  'AneStaging\.TrainingConvertsEachWeightOncePerOptimizerStep'
  'AneStaging\.TrainingLossesAreBitIdenticalOnAneFakeAndAneSim'
  'AllBackends/.*/ane_sim_qwen3_0_6b' 'AllBackends/.*/ane_sim_stories110m'
  # The classifier and flash attention against the ref oracle at a full vocabulary or T >= 256
  # (30-50 s each emulated, in the oracle's double loops): both run on the BLAS and portable C++,
  # not on an ARM kernel of ours, and their small and odd shapes run here.
  'AllBackends/ClassifierVsRef\..*_stories110m_vocab' 'AllBackends/ClassifierVsRef\..*_qwen3_vocab_chunked'
  'AllBackends/ClassifierVsRef\..*_odd_chunked' 'CpuBackends/FlashAttention\..*_T256_.*'
  'CpuBackends/FlashAttention\..*_T1024_.*'
  # The bf16 stages' fused-versus-composed bit equality (70-90 s each emulated): the same C++ calls
  # in the same order on every architecture, with products through the BLAS (no kernel of ours
  # that cpu_features picks); CpuBf16Stages.BlocksWithAdaptersMatchRef and StagesVsRef's cpu_bf16
  # cases hold the fused stages to ref here.
  'CpuBf16Stages\.FfnBlockEqualsItsComposition' 'CpuBf16Stages\.AttentionBlockEqualsItsComposition'
  'CpuBf16Classifier\.BackwardEqualsItsCompositionFromOps'
  # The ane_sim backend's decoding layer is its host's (ForwardingBackend: the cpu backend's), so
  # these cases repeat the cpu ones bit for bit (~70 s a pass emulated).
  'AllBackends/DecodeStageVsRef\..*/ane_sim_.*'
  # Whole-model finite differences in double on the ref backend (50-60 s each emulated): portable
  # C++ with no kernel of ours; one variant of the three runs here, all three natively.
  'Tiny/ModelGradCheck\.EveryParameterTensor/gqa_qknorm_untied_interleaved'
  'Tiny/ModelGradCheck\.EveryParameterTensor/mha_untied_half'
  # The signal shield under qemu-user checks the emulator, which takes every signal itself and
  # hands it to the guest at its own boundaries: not what an aarch64 kernel does (70 s emulated).
  'SignalShield\..*'
)
# cortex-a72 differs from max only in which kernels run (core/cpu_features), so its pass is the
# tests that reach a kernel with an ARM path: the kernel and packed-model tests, decoding (the
# packed products and attention), and the golden texts and forward parity end to end. The rest
# runs in the max pass only: training's ops and stages (including the bf16 fused-versus-composed
# checks), the fp32 training losses and AdamW multiply through the BLAS, which picks its own
# kernels, and are otherwise plain C++ that no cpu_features level changes.
A72_ONLY='^(KernelDispatch\..*|PackedKernels\..*|PackedModel\..*|.*Decode.*|FlashAttention.*'
A72_ONLY+='|cli_generate|cli_quantized|cli_convert|generate_greedy_parity|parity_stories260k|parity_llama|parity_qwen3)( |$)'
# A name ends at the end or at a space: CTest's names of value-parameterised GoogleTest cases carry
# "  # GetParam() = ..." after the name. No groups inside the entries: CMake's regular
# expressions allow only a few.
exclude=$(IFS='|'; echo "^(${EXCLUDED[*]})( |\$)")

status=0
for cpu in $cpus; do
  echo "test_arm64: the tests under qemu-aarch64 -cpu $cpu"
  select=(-E "$exclude")
  [[ $cpu == cortex-a72 ]] && select+=(-R "$A72_ONLY")
  # The GoogleTest cases of that selection in 8 processes (scripts/emulated_unit_tests.py: under
  # qemu each process start costs ~0.35 s), then the rest of it through CTest.
  export ANETRAIN_QEMU_CPU=$cpu
  rm -f "build-arm64/unit-$cpu.ctest_regex"
  python3 scripts/emulated_unit_tests.py build-arm64 "build-arm64/unit-$cpu" -- "${select[@]}" || status=1
  if [[ ! -s build-arm64/unit-$cpu.ctest_regex ]]; then
    # No selection was written (ctest could not list the tests): an empty -R would run them all.
    echo "test_arm64: no test selection for the -cpu $cpu pass's CTest part"
    status=1
  elif ! (cd build-arm64 && ctest --output-on-failure -j"$(nproc)" -R "$(cat "unit-$cpu.ctest_regex")" \
            --timeout 900 > "ctest-$cpu.log" 2>&1); then
    status=1
  fi
  grep -sE 'tests passed|tests failed|\*\*\*Failed|\*\*\*Timeout|Not Run' "build-arm64/ctest-$cpu.log" | head -40
  echo "test_arm64: full logs build-arm64/ctest-$cpu.log and build-arm64/unit-$cpu.shard*.log"
  took "the -cpu $cpu pass"
done
echo "test_arm64: left out under emulation (reasons in $0): ${EXCLUDED[*]}"
exit $status
