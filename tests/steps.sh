# Steps of a long run (sourced by tests/run.sh): each step's output goes to
# the terminal and to a log, its result and duration are recorded, and
# `steps_summary` prints them all at the end, with the tests that failed.
# A failing step does not stop the run; `steps_summary` returns non-zero if
# any step failed.

STEPS_LOGS="$(mktemp -d "${TMPDIR:-/tmp}/wasm-rpyc-steps.XXXXXX")"
STEP_NAMES=()
STEP_RESULTS=()
STEP_SECONDS=()
STEP_LOGS=()
STEPS_BACKGROUND=()
STEPS_STARTED=$SECONDS

# step NAME COMMAND...: runs COMMAND in the foreground and records it.
step() {
  local name=$1
  shift
  local log="$STEPS_LOGS/${#STEP_NAMES[@]}.log"
  local start=$SECONDS
  echo "=== $name"
  "$@" 2>&1 | tee "$log"
  local status=${PIPESTATUS[0]}
  steps_record "$name" "$status" $((SECONDS - start)) "$log"
  return "$status"
}

# step_background NAME COMMAND...: starts COMMAND beside what follows, its
# output kept until `steps_wait` prints it (so two steps never interleave).
step_background() {
  local name=$1
  shift
  local log="$STEPS_LOGS/background-${#STEPS_BACKGROUND[@]}.log"
  echo "=== $name (started beside the next steps)"
  (
    start=$SECONDS
    "$@" > "$log" 2>&1
    echo "$? $((SECONDS - start))" > "$log.result"
  ) &
  STEPS_BACKGROUND+=("$!|$name|$log")
}

# steps_wait: waits for the background steps, prints their output, records them.
steps_wait() {
  local entry pid name log status seconds
  for entry in "${STEPS_BACKGROUND[@]}"; do
    IFS='|' read -r pid name log <<< "$entry"
    wait "$pid"
    echo "=== $name (output)"
    cat "$log"
    read -r status seconds < "$log.result" || { status=1; seconds=0; }
    steps_record "$name" "$status" "$seconds" "$log"
  done
  STEPS_BACKGROUND=()
}

steps_record() {
  STEP_NAMES+=("$1")
  STEP_RESULTS+=("$2")
  STEP_SECONDS+=("$3")
  STEP_LOGS+=("$4")
  if [ "$2" -ne 0 ]; then
    echo "=== $1: FAILED (exit status $2)"
  fi
}

# The failed tests a step's log names: cargo test's and pytest's own lines.
steps_failed_tests() {
  grep -E '^test .* \.\.\. FAILED$|^(FAILED|ERROR) tests/' "$1" | sed 's/^/      /' | head -50
}

# steps_summary: each step with its result and duration, then the failures.
steps_summary() {
  local i failed=0
  echo
  echo "=== summary (${#STEP_NAMES[@]} steps, $(steps_duration $((SECONDS - STEPS_STARTED))) in all)"
  for i in "${!STEP_NAMES[@]}"; do
    if [ "${STEP_RESULTS[$i]}" -eq 0 ]; then
      printf '  ok      %8s  %s\n' "$(steps_duration "${STEP_SECONDS[$i]}")" "${STEP_NAMES[$i]}"
    else
      failed=1
      printf '  FAILED  %8s  %s\n' "$(steps_duration "${STEP_SECONDS[$i]}")" "${STEP_NAMES[$i]}"
      steps_failed_tests "${STEP_LOGS[$i]}"
    fi
  done
  rm -rf "$STEPS_LOGS"
  return $failed
}

steps_duration() {
  printf '%dm%02ds' $(($1 / 60)) $(($1 % 60))
}
