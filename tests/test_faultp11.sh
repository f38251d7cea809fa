#!/usr/bin/env bash
. "$(dirname "$0")/lib.sh"
hk_setup
hk_finish
