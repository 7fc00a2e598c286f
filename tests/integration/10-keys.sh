#!/usr/bin/env bash
# keys: kubeferry keygen / sign against the stock minisign.
source "$(dirname "$0")/../lib.sh"
need minisign openssl setsid script

cd "$LAB"
echo "a file to sign" >file.txt

note "keygen -W: unencrypted PKCS#8, 0600, minisign public key"
expect_exit 0 "$KF" keygen -W -s plain.key -p plain.pub
expect_output '^key id: [0-9A-F]{16}$'
expect_output '^RW[A-Za-z0-9+/]{54}$'
assert_eq "$(stat -c %a plain.key)" 600 "secret key mode"
assert_eq "$(head -n 1 plain.key)" "-----BEGIN PRIVATE KEY-----" "PEM type"
id=$(sed -n 's/^key id: //p' "$LAB/out")
assert_eq "$(head -n 1 plain.pub)" "untrusted comment: minisign public key $id"
# To a file first: 'openssl | grep -q' can fail under pipefail (SIGPIPE).
openssl pkey -in plain.key -noout -text >"$LAB/pkey.txt"
grep -q ED25519 "$LAB/pkey.txt" || fail "openssl does not read plain.key as Ed25519"

note "kubeferry sign, stock minisign -V accepts (and requires ED with -H)"
SOURCE_DATE_EPOCH=1700000123 expect_exit 0 "$KF" sign -s plain.key file.txt
assert_file file.txt.minisig
assert_eq "$(sed -n 1p file.txt.minisig)" "untrusted comment: signature from kubeferry secret key $id"
assert_eq "$(sed -n 3p file.txt.minisig)" "$(printf 'trusted comment: timestamp:1700000123\tfile:file.txt\thashed')"
expect_exit 0 minisign -V -H -p plain.pub -m file.txt
expect_output 'timestamp:1700000123'

note "trusted comment and -x"
expect_exit 0 "$KF" sign -s plain.key -t "bundle k8s 1.33.3" -x other.sig file.txt
expect_exit 0 minisign -V -p plain.pub -m file.txt -x other.sig
expect_output 'Trusted comment: bundle k8s 1.33.3'

note "tampered file: minisign rejects"
cp file.txt tampered.txt
cp file.txt.minisig tampered.txt.minisig
echo x >>tampered.txt
expect_exit 1 minisign -V -p plain.pub -m tampered.txt

note "overwrite refused without --force, and nothing is written"
cp plain.key plain.key.orig
cp plain.pub plain.pub.orig
expect_exit 2 "$KF" keygen -W -s plain.key -p plain.pub
expect_output 'plain.key already exists'
cmp -s plain.key plain.key.orig || fail "plain.key changed"
expect_exit 2 "$KF" keygen -W -s fresh.key -p plain.pub
expect_output 'plain.pub already exists'
assert_absent fresh.key
cmp -s plain.pub plain.pub.orig || fail "plain.pub changed"
expect_exit 0 "$KF" keygen -W --force -s plain.key -p plain.pub
cmp -s plain.key plain.key.orig && fail "--force did not replace plain.key"
# The old signature no longer verifies under the new key.
expect_exit 1 minisign -V -p plain.pub -m file.txt

note "keygen with a passphrase file: ENCRYPTED PRIVATE KEY"
printf 'correct horse battery\n' >pass
printf 'wrong horse\n' >wrong
KUBEFERRY_PASSPHRASE_FILE=$LAB/pass expect_exit 0 "$KF" keygen -s enc.key -p enc.pub
expect_output 'encrypted'
assert_eq "$(stat -c %a enc.key)" 600 "secret key mode"
assert_eq "$(head -n 1 enc.key)" "-----BEGIN ENCRYPTED PRIVATE KEY-----" "PEM type"
grep -q 'correct horse' enc.key && fail "passphrase in the key file"
openssl pkey -in enc.key -passin "file:$LAB/pass" -noout || fail "openssl cannot decrypt enc.key"
KUBEFERRY_PASSPHRASE_FILE=$LAB/pass expect_exit 0 "$KF" sign -s enc.key file.txt
expect_exit 0 minisign -V -p enc.pub -m file.txt

note "wrong passphrase: refused, no signature written"
KUBEFERRY_PASSPHRASE_FILE=$LAB/wrong expect_exit 2 "$KF" sign -s enc.key -x wrong.sig file.txt
expect_output 'enc.key: cannot decrypt the secret key \(wrong passphrase\?\)'
assert_absent wrong.sig
# No passphrase source at all (no terminal under setsid).
expect_exit 2 env -u KUBEFERRY_PASSPHRASE_FILE setsid "$KF" sign -s enc.key -x none.sig file.txt
expect_output 'enc.key is encrypted: no passphrase'
assert_absent none.sig
# An empty passphrase is refused (use -W instead).
: >empty
KUBEFERRY_PASSPHRASE_FILE=$LAB/empty expect_exit 2 "$KF" keygen -s e.key -p e.pub
expect_output 'empty passphrase'
assert_absent e.key
assert_absent e.pub

note "passphrase from the terminal (a pty from script(1))"
# Typed twice; a mismatch writes nothing.
# script -e passes the command's exit status on.
rc=0
printf 'tty secret\nother\n' | script -qec "$KF keygen -s tty.key -p tty.pub" /dev/null >tty.out 2>&1 || rc=$?
assert_eq "$rc" 2 "exit status when the two passphrases differ"
grep -q 'the two passphrases differ' tty.out || { cat tty.out; fail "mismatch not reported"; }
assert_absent tty.key
assert_absent tty.pub
printf 'tty secret\ntty secret\n' | script -qec "$KF keygen -s tty.key -p tty.pub" /dev/null >tty.out 2>&1 \
	|| { cat tty.out; fail "keygen on a terminal failed"; }
assert_eq "$(head -n 1 tty.key)" "-----BEGIN ENCRYPTED PRIVATE KEY-----" "PEM type"
printf 'tty secret\n' >tty.pass
openssl pkey -in tty.key -passin "file:$LAB/tty.pass" -noout || fail "terminal passphrase not used"
printf 'tty secret\n' | script -qec "$KF sign -s tty.key file.txt -x tty.sig" /dev/null >tty.out 2>&1 \
	|| { cat tty.out; fail "sign on a terminal failed"; }
expect_exit 0 minisign -V -p tty.pub -m file.txt -x tty.sig

note "a minisign key (minisign -G -W) signs through kubeferry"
minisign -G -W -p ms.pub -s ms.key >/dev/null
expect_exit 0 "$KF" sign -s ms.key -x ms.sig file.txt
# minisign 0.11 prints the id without leading zeros; kubeferry pads to 16.
msid=$(sed -n 's/^untrusted comment: minisign public key 0*//p' ms.pub)
expect_output "key id 0*$msid\)"
expect_exit 0 minisign -V -H -p ms.pub -m file.txt -x ms.sig
# A key pair mismatch: another key's public half spliced into the secret key.
minisign -G -W -p ms2.pub -s ms2.key >/dev/null
python3 - "$LAB/ms.key" "$LAB/ms2.key" "$LAB/bad.key" <<'PY'
import base64, sys
a = base64.b64decode(open(sys.argv[1]).read().splitlines()[1])
b = base64.b64decode(open(sys.argv[2]).read().splitlines()[1])
bad = a[:94] + b[94:126] + a[126:]
open(sys.argv[3], "w").write("untrusted comment: spliced\n" + base64.b64encode(bad).decode() + "\n")
PY
expect_exit 2 "$KF" sign -s bad.key -x bad.sig file.txt
expect_output 'bad.key: damaged minisign secret key'
assert_absent bad.sig

note "an encrypted minisign key is refused with a way out"
# minisign -G reads a password only from a terminal reliably; mark a
# copy of ms.key as scrypt-encrypted (kdf_alg "Sc") as minisign does.
python3 - "$LAB/ms.key" "$LAB/msenc.key" <<'PY'
import base64, sys
a = base64.b64decode(open(sys.argv[1]).read().splitlines()[1])
enc = a[:2] + b"Sc" + a[4:]
open(sys.argv[2], "w").write("untrusted comment: minisign encrypted secret key\n" + base64.b64encode(enc).decode() + "\n")
PY
expect_exit 2 "$KF" sign -s msenc.key -x msenc.sig file.txt
expect_output 'msenc.key: encrypted minisign secret keys are not supported.*minisign -C'
assert_absent msenc.sig

note "usage errors"
expect_exit 2 "$KF" sign file.txt
expect_output 'Exit codes'
expect_exit 2 "$KF" keygen -W -s only.key
assert_absent only.key
expect_exit 3 "$KF" sign -s missing.key file.txt
expect_output 'missing.key'
expect_exit 3 "$KF" sign -s plain.key missing.txt
expect_output 'missing.txt'
assert_absent missing.txt.minisig
expect_exit 2 "$KF" sign -s plain.key -t "$(printf 'two\nlines')" -x nl.sig file.txt
expect_output 'cannot sign file.txt: trusted comment must be a single line'
assert_absent nl.sig
SOURCE_DATE_EPOCH=yesterday expect_exit 2 "$KF" sign -s plain.key file.txt
expect_output 'SOURCE_DATE_EPOCH'
expect_exit 0 "$KF" keygen --help
expect_output '3  I/O error'
echo ok
