#!/usr/bin/env bash
# --help of every command of both programs: exit 0, a usage line, and the
# exit codes (issue 2: "Exit codes, documented in --help"). Every option the
# README names for a command appears in that command's --help.
source "$(dirname "$0")/../lib.sh"

# check_help PROG WORDS...: PROG WORDS... --help exits 0, starts with a usage line
# naming the command, and lists exit codes 0, 2 and 3 (1 only where a
# command verifies something).
check_help() {
	local prog=$1; shift
	expect_exit 0 "$prog" "$@" --help
	expect_output "^Usage: $(basename "$prog") $*"
	expect_output "Exit codes"
	# The codes themselves, after the heading (one a line or in a sentence).
	sed -n '/Exit codes/,$p' "$LAB/out" >"$LAB/codes"
	local c
	for c in 0 2 3; do
		grep -Eq "(^|[ ,:])$c( |$)" "$LAB/codes" || { cat "$LAB/out"; fail "$* --help: exit code $c not listed"; }
	done
}

note "top-level help"
check_help "$KF"
check_help "$KFI"
note "kubeferry commands"
for c in build fetch lint verify inspect push keygen sign; do check_help "$KF" "$c"; done
note "kubeferry-install commands"
for c in verify unpack mirror preflight apply reset cluster status host etcd; do check_help "$KFI" "$c"; done
check_help "$KFI" host packages
check_help "$KFI" mirror install
check_help "$KFI" mirror kubespray-vars
check_help "$KFI" cluster plan
check_help "$KFI" cluster init
check_help "$KFI" cluster join
check_help "$KFI" etcd snapshot
check_help "$KFI" etcd restore
check_help "$KFI" etcd renew-certs
for c in plan apply node drain uncordon; do check_help "$KFI" upgrade "$c"; done

note "every command in the top-level help is a command"
"$KF" --help | sed -n '/^Commands:/,/^$/p' | awk 'NF && !/:$/ {print $1}' >"$LAB/cmds"
assert_eq "$(wc -l <"$LAB/cmds")" 8 "kubeferry commands listed"
while read -r c; do check_help "$KF" "$c"; done <"$LAB/cmds"
"$KFI" --help | sed -n '/^Commands:/,/^$/p' | awk 'NF && !/:$/ {print $1}' >"$LAB/cmds"
assert_eq "$(wc -l <"$LAB/cmds")" 11 "kubeferry-install commands listed"
while read -r c; do check_help "$KFI" "$c"; done <"$LAB/cmds"

note "README: each option named in a command's table row is in its --help"
python3 - "$ROOT/README.md" "$KF" "$KFI" <<'PY' || fail "README and --help disagree"
import re, subprocess, sys
readme, kf, kfi = sys.argv[1:]
prog, rows, bad = None, 0, 0
for line in open(readme):
    if line.startswith("### "):
        prog = kfi if "kubeferry-install" in line else kf if "kubeferry" in line else None
    if not prog or not line.startswith("| `"):
        continue
    for syn in re.findall(r"`([^`]*)`", line.split(" | ")[0]):
        w = syn.split()
        cmd = w[:2] if w[0] in ("mirror", "cluster", "etcd", "upgrade") else w[:1]
        out = subprocess.run([prog] + cmd + ["--help"], capture_output=True, text=True).stdout
        rows += 1
        for opt in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[a-zA-Z])\b", syn):
            if not re.search(r"(?<![\w-])" + re.escape(opt) + r"\b", out):
                print("README: %s %s: %s is not in --help" % (prog.split("/")[-1], " ".join(cmd), opt))
                bad += 1
if rows < 17:
    print("README: only %d command synopses found" % rows)
    bad += 1
sys.exit(1 if bad else 0)
PY
echo "help texts complete"
