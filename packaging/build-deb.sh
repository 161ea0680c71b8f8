#!/bin/bash
# Builds zk_<version>-1_amd64.deb from the `make dist` tarball with dpkg-deb alone (no
# debhelper, nothing to compile: the tarball carries the static binary).
#
#   packaging/build-deb.sh target/dist/zk-0.1.0-x86_64-linux.tar.gz [OUTDIR]
#
# Layout: /usr/bin/zk, man pages (gzipped) under /usr/share/man, the unit in
# /usr/lib/systemd/system, sysusers/tmpfiles entries in /usr/lib, /etc/zk/zoo.cfg as a
# conffile (kept on upgrade) plus /etc/zk/zoo.cfg.example, README in /usr/share/doc/zk.
# The maintainer scripts in packaging/debian/ create the zk user and /var/lib/zk; the
# service is not started or enabled on install (an ensemble member needs its myid first).
set -euo pipefail

tarball=${1:?usage: build-deb.sh ZK-TARBALL [OUTDIR]}
outdir=${2:-$(dirname "$tarball")}
here=$(cd "$(dirname "$0")" && pwd)

base=$(basename "$tarball" .tar.gz)            # zk-0.1.0-x86_64-linux
version=${base#zk-}
version=${version%-x86_64-linux}
[[ $version =~ ^[0-9][0-9A-Za-z.+~]*$ ]] || { echo "build-deb.sh: cannot read a version from $base" >&2; exit 1; }
revision=${DEB_REVISION:-1}
arch=amd64
deb="$outdir/zk_${version}-${revision}_${arch}.deb"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -C "$work" -xzf "$tarball"
src="$work/$base"
root="$work/root"

install -D -m 0755 "$src/zk" "$root/usr/bin/zk"
for page in "$src"/man/*.1 "$src"/man/*.5; do
    section=${page##*.}
    install -D -m 0644 "$page" "$root/usr/share/man/man$section/$(basename "$page")"
    gzip -9n "$root/usr/share/man/man$section/$(basename "$page")"
done
install -D -m 0644 "$src/zk.service" "$root/usr/lib/systemd/system/zk.service"
install -D -m 0644 "$src/zk.sysusers.conf" "$root/usr/lib/sysusers.d/zk.conf"
install -D -m 0644 "$src/zk.tmpfiles.conf" "$root/usr/lib/tmpfiles.d/zk.conf"
install -D -m 0644 "$src/zoo.cfg.example" "$root/etc/zk/zoo.cfg"
install -D -m 0644 "$src/zoo.cfg.example" "$root/etc/zk/zoo.cfg.example"
install -D -m 0644 "$src/README.md" "$root/usr/share/doc/zk/README.md"
install -D -m 0644 "$here/debian/copyright" "$root/usr/share/doc/zk/copyright"

install -d -m 0755 "$root/DEBIAN"
for script in postinst prerm postrm; do
    install -m 0755 "$here/debian/$script" "$root/DEBIAN/$script"
done
install -m 0644 "$here/debian/conffiles" "$root/DEBIAN/conffiles"
installed_kib=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/${version}-${revision}/" -e "s/@ARCH@/$arch/" \
    -e "s/@INSTALLED_SIZE@/$installed_kib/" "$here/debian/control" > "$root/DEBIAN/control"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z \
    | xargs -0 md5sum) > "$root/DEBIAN/md5sums"

mkdir -p "$outdir"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
