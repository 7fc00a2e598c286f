#!/usr/bin/env python3
"""Write small, deterministic test images as OCI layouts, with no network.

Usage: make-layout.py OUTDIR

Creates one OCI image layout per image under OUTDIR (OUTDIR/<name>/), each
with index.json naming the image "<name>" (for skopeo's oci:DIR:NAME):

  pause   OCI index: linux/amd64, linux/arm64, linux/s390x
  nginx   Docker manifest list: linux/amd64, linux/arm64/v8 (Docker types)
  single  one OCI manifest, linux/amd64

Every image's first layer is the same "base" layer, so the three images
share a blob. Layers are tar files with fixed metadata, gzip'ed without a
name or time (like gzip -n): the same script always gives the same bytes.
Prints "NAME ARCH LAYER_DIGEST" for the per-arch layers and "base DIGEST".
"""
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
D_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
D_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
D_CONFIG = "application/vnd.docker.container.image.v1+json"
D_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def tar_bytes(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o755
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def gz(data):
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as g:
        g.write(data)
    return buf.getvalue()


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Layout:
    def __init__(self, path):
        self.path = path
        os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
        with open(os.path.join(path, "oci-layout"), "w") as f:
            f.write('{"imageLayoutVersion":"1.0.0"}')

    def put(self, data):
        d = sha(data)
        with open(os.path.join(self.path, "blobs", "sha256", d[7:]), "wb") as f:
            f.write(data)
        return d

    def index(self, name, mt, digest, size):
        idx = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{
            "mediaType": mt, "digest": digest, "size": size,
            "annotations": {"org.opencontainers.image.ref.name": name}}]}
        with open(os.path.join(self.path, "index.json"), "w") as f:
            json.dump(idx, f, sort_keys=True)


BASE_TAR = tar_bytes({"etc/kf-base": b"shared base layer\n"})
BASE = gz(BASE_TAR)


def image(lay, name, arch, variant, docker):
    ltar = tar_bytes({"bin/%s" % name: ("%s for %s\n" % (name, arch)).encode()})
    layer = gz(ltar)
    config = {"architecture": arch, "os": "linux",
              "rootfs": {"type": "layers", "diff_ids": [sha(BASE_TAR), sha(ltar)]},
              "config": {"Cmd": ["/bin/%s" % name]}}
    if variant:
        config["variant"] = variant
    cbytes = json.dumps(config, sort_keys=True).encode()
    lt = D_LAYER if docker else OCI_LAYER
    m = {"schemaVersion": 2,
         "mediaType": D_MANIFEST if docker else OCI_MANIFEST,
         "config": {"mediaType": D_CONFIG if docker else OCI_CONFIG,
                    "digest": lay.put(cbytes), "size": len(cbytes)},
         "layers": [{"mediaType": lt, "digest": lay.put(BASE), "size": len(BASE)},
                    {"mediaType": lt, "digest": lay.put(layer), "size": len(layer)}]}
    mbytes = json.dumps(m, sort_keys=True, indent=2).encode()
    print(name, arch, sha(layer), sha(mbytes))
    return {"mediaType": m["mediaType"], "digest": lay.put(mbytes),
            "size": len(mbytes)}, {"os": "linux", "architecture": arch,
                                   **({"variant": variant} if variant else {})}


def multi(out, name, platforms, docker):
    lay = Layout(os.path.join(out, name))
    descs = []
    for arch, variant in platforms:
        d, p = image(lay, name, arch, variant, docker)
        d["platform"] = p
        descs.append(d)
    idx = {"schemaVersion": 2, "mediaType": D_LIST if docker else OCI_INDEX,
           "manifests": descs}
    ibytes = json.dumps(idx, sort_keys=True, indent=2).encode()
    lay.index(name, idx["mediaType"], lay.put(ibytes), len(ibytes))


def main():
    out = sys.argv[1]
    multi(out, "pause", [("amd64", None), ("arm64", None), ("s390x", None)], False)
    multi(out, "nginx", [("amd64", None), ("arm64", "v8")], True)
    lay = Layout(os.path.join(out, "single"))
    d, _ = image(lay, "single", "amd64", None, False)
    lay.index("single", d["mediaType"], d["digest"], d["size"])
    print("base", "-", sha(BASE), "-")


if __name__ == "__main__":
    main()
