#!/usr/bin/env bash
# test_metrics.sh: being written (issue 4)
. "$(dirname "$0")/lib.sh"
hk_finish
