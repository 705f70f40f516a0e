#!/usr/bin/env bash
# Fetch the guest kernel and busybox from Debian's packages (bookworm) and
# unpack them into a cache folder. Reused when already present.
#
#   usage: fetch.sh [CACHE_DIR]     (default: <repo>/.tools/guest)
#
# Produces:  CACHE_DIR/vmlinuz          (bzImage of the Debian cloud kernel)
#            CACHE_DIR/vmlinux          (the same kernel, decompressed ELF: boots without
#                                        running the decompressor in the guest)
#            CACHE_DIR/config           (its kernel config)
#            CACHE_DIR/busybox          (static busybox)
#            CACHE_DIR/modules/         (kernel modules tree, lib/modules/<ver>)
#            CACHE_DIR/VERSION          (package versions used)
# The initramfs itself is built by the Rust code (offcard_vmm::initramfs).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="${1:-$here/../../.tools/guest}"
mkdir -p "$dest"
dest="$(cd "$dest" && pwd)"
if [[ -s "$dest/vmlinuz" && -s "$dest/vmlinux" && -x "$dest/busybox" && -s "$dest/VERSION" ]]; then
  echo "fetch.sh: guest assets cached in $dest ($(tr '\n' ' ' < "$dest/VERSION"))"
  exit 0
fi
command -v apt-get >/dev/null || { echo "fetch.sh: apt-get not found (need a Debian host)" >&2; exit 2; }
command -v dpkg-deb >/dev/null || { echo "fetch.sh: dpkg-deb not found" >&2; exit 2; }
command -v lz4 >/dev/null || { echo "fetch.sh: installing lz4 (to decompress the kernel)"; apt-get install -y -qq lz4 >/dev/null; }

# Resolve the versioned kernel package behind the linux-image-cloud-amd64 metapackage.
kpkg="$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')"
if [[ -z "$kpkg" ]]; then
  echo "fetch.sh: apt lists missing or stale; running apt-get update" >&2
  apt-get update -qq
  kpkg="$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')"
fi
[[ -n "$kpkg" ]] || { echo "fetch.sh: cannot resolve linux-image-cloud-amd64" >&2; exit 1; }

work="$(mktemp -d "$dest/.fetch.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$work"
echo "fetch.sh: apt-get download $kpkg busybox-static (Debian mirror) ..."
apt-get download "$kpkg" busybox-static
echo "fetch.sh: extracting ..."
mkdir root
for d in *.deb; do dpkg-deb -x "$d" root; done
vmlinuz="$(ls root/boot/vmlinuz-* | head -n1)"
kver="${vmlinuz##*/vmlinuz-}"
cp "$vmlinuz" "$dest/vmlinuz.tmp"
cp "root/boot/config-$kver" "$dest/config"
cp "root/boot/System.map-$kver" "$dest/System.map" 2>/dev/null || true
cp root/bin/busybox "$dest/busybox.tmp"
chmod 755 "$dest/busybox.tmp"
rm -rf "$dest/modules"
mkdir -p "$dest/modules"
cp -a "root/lib/modules/$kver" "$dest/modules/"
# Decompress the payload of the bzImage (like scripts/extract-vmlinux): find the
# compressor's magic and decompress from there on the host.
extract() { # magic-bytes command...
  local magic="$1"; shift
  local off
  for off in $(LC_ALL=C grep -abo "$magic" "$vmlinuz" | cut -d: -f1 | head -n 5); do
    tail -c+$((off + 1)) "$vmlinuz" | "$@" > vmlinux 2>/dev/null || true
    if [[ "$(head -c 4 vmlinux | od -An -c | tr -d ' ')" == '177ELF' ]]; then return 0; fi
  done
  return 1
}
if   command -v lz4  >/dev/null && extract $'\x02\x21\x4c\x18' lz4 -dc; then :
elif command -v xz   >/dev/null && extract $'\xfd7zXZ\x00' xz -dc; then :
elif command -v zstd >/dev/null && extract $'\x28\xb5\x2f\xfd' zstd -dc; then :
elif extract $'\x1f\x8b\x08' gzip -dc; then :
else echo "fetch.sh: could not extract vmlinux from $vmlinuz (need lz4/xz/zstd/gzip)" >&2; exit 1
fi
mv vmlinux "$dest/vmlinux"
{ echo "kernel=$kver"; for d in *.deb; do echo "deb=$d"; done; } > "$dest/VERSION.tmp"
mv "$dest/vmlinuz.tmp" "$dest/vmlinuz"
mv "$dest/busybox.tmp" "$dest/busybox"
mv "$dest/VERSION.tmp" "$dest/VERSION"
echo "fetch.sh: done: $dest (kernel $kver)"
