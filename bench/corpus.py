#!/usr/bin/env python3
"""Bench corpora, made from this machine's own files (nothing downloaded).

  corpus.py small N DIR     N entries of 464 bytes (pieces of system files:
                            an image layout's small blobs, an RPM repo's
                            metadata, Helm chart templates)
  corpus.py large BYTES DIR about BYTES in 90 ELF-like entries (system
                            binaries and libraries laid end to end, like
                            kubelet or containerd)

Writes DIR/files/... and, for a hand-made bundle, DIR/kubeferry/bundle.yaml
(format of docs/bundle-format.md) and DIR/list (tar's member order), and
DIR/spec.yaml (a kubeferry build spec over the same files, amd64 only).
"""
import glob, hashlib, os, sys

kind, amount, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
cands = sorted(p for p in glob.glob("/usr/lib/x86_64-linux-gnu/*.so*") + glob.glob("/usr/bin/*")
               if os.path.isfile(p) and not os.path.islink(p) and os.access(p, os.R_OK)
               and os.path.getsize(p) > 0)


def stream():
    """System files' bytes, end to end, forever."""
    while True:
        for p in cands:
            with open(p, "rb") as f:
                while True:
                    b = f.read(1 << 20)
                    if not b:
                        break
                    yield b


def take(gen, n, carry):
    while len(carry[0]) < n:
        carry[0] += next(gen)
    piece, carry[0] = carry[0][:n], carry[0][n:]
    return piece


gen, carry, files = stream(), [b""], []
if kind == "small":
    for i in range(amount):
        files.append(("files/small/%02d/%03d/f%06d" % (i // 10000, (i // 100) % 100, i), take(gen, 464, carry)))
elif kind == "large":
    n = 90
    each = amount // n
    for i in range(n):
        files.append(("files/large/bin%02d" % i, take(gen, each, carry)))
else:
    sys.exit("corpus.py: kind must be small or large")

entries = []
for rel, data in files:
    dst = os.path.join(out, rel)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    with open(dst, "wb") as f:
        f.write(data)
    mode = "0755" if kind == "large" else "0644"
    os.chmod(dst, int(mode, 8))
    entries.append((rel, len(data), mode, hashlib.sha256(data).hexdigest()))
entries.sort()
os.makedirs(os.path.join(out, "kubeferry"), exist_ok=True)
with open(os.path.join(out, "kubeferry/bundle.yaml"), "w") as f:
    f.write('format: 1\nname: "bench"\nversion: "1.0.0"\nkubernetesVersion: "1.33.3"\n'
            'architectures: ["amd64"]\ncreated: "2023-11-14T22:13:20Z"\n'
            'builder: "bench/corpus.py"\ncomponents: []\nimages: []\ninstall:\n'
            '  etcd: "host"\n  cni: "flannel"\n  podSubnet: "10.244.0.0/16"\n'
            '  serviceSubnet: "10.96.0.0/12"\n  mirror: null\nentries:\n')
    for rel, size, mode, sha in entries:
        f.write('  - path: "%s"\n    size: %d\n    mode: "%s"\n    sha256: "%s"\n' % (rel, size, mode, sha))
with open(os.path.join(out, "list"), "w") as f:
    f.write("kubeferry/bundle.yaml\nkubeferry/bundle.yaml.minisig\n")
    for e in entries:
        f.write(e[0] + "\n")
with open(os.path.join(out, "spec.yaml"), "w") as f:
    f.write('apiVersion: kubeferry.io/v1\nkind: Bundle\nmetadata: {name: bench, version: "1.0"}\n'
            'spec:\n  architectures: [amd64]\n  components:\n')
    for i, (rel, size, mode, sha) in enumerate(entries):
        f.write('    - name: c%d\n      version: "1.0"\n      url: %s\n      sha256: {amd64: %s}\n'
                % (i, rel, sha))
print("bench/corpus: %s, %d entries, %d bytes" % (kind, len(entries), sum(e[1] for e in entries)))
