#!/usr/bin/env bash
# Build a Go builder image from this machine's own Go toolchain, for hosts
# that cannot pull golang:* from a registry. The Dockerfiles take it through
# --build-arg BUILDER_IMAGE=localhost/go-builder:<go version>.
set -euo pipefail

PROG=$(basename "$0")
REPOSITORY=localhost/go-builder

usage() {
	cat <<EOF
Usage: $PROG [--force] [--print-tag] [--help]

Build the image $REPOSITORY:<go version> from the Go toolchain on PATH:
  /usr/local/go      a copy of \$(go env GOROOT)
  /bin, /usr/bin     busybox-static: /bin/sh and the usual applets
  /etc/ssl/certs     this host's CA bundle, if it has one
  /tmp, /go, /root   writable working directories
with PATH, GOROOT, GOPATH, GOCACHE, HOME, GOTOOLCHAIN=local and
CGO_ENABLED=0 set in the image.

Does nothing when the tag already exists.

Options:
  --force      rebuild even if the tag exists
  --print-tag  print the tag this host would build, and exit
  -h, --help   show this help

Environment:
  BUSYBOX      path to a static busybox (default: /bin/busybox,
               from the Debian package busybox-static)
EOF
}

die() {
	echo "$PROG: error: $*" >&2
	exit 1
}

force=false
print_tag=false
while [ $# -gt 0 ]; do
	case "$1" in
	--force) force=true ;;
	--print-tag) print_tag=true ;;
	-h | --help)
		usage
		exit 0
		;;
	*) die "unknown argument '$1' (see --help)" ;;
	esac
	shift
done

# The toolchain on PATH is the one copied, never one Go would download.
export GOTOOLCHAIN=local
command -v go >/dev/null 2>&1 || die "go is not on PATH; install Go first"
goroot=$(go env GOROOT)
goversion=$(go env GOVERSION)
[ -x "$goroot/bin/go" ] || die "GOROOT $goroot has no bin/go"
tag="$REPOSITORY:${goversion#go}"

if $print_tag; then
	echo "$tag"
	exit 0
fi

command -v docker >/dev/null 2>&1 || die "docker is not on PATH; install the docker client"
docker info >/dev/null 2>&1 || die "cannot reach the docker daemon (is dockerd running, may this user use it?)"

if ! $force && docker image inspect "$tag" >/dev/null 2>&1; then
	echo "$PROG: $tag already exists, nothing to do (use --force to rebuild)"
	exit 0
fi

busybox=${BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] || die "no busybox at $busybox; install the Debian package busybox-static"
# A dynamically linked busybox would need the host's libc in the image.
if command -v ldd >/dev/null 2>&1 && ldd "$busybox" >/dev/null 2>&1; then
	die "$busybox is dynamically linked; install busybox-static"
fi

rootfs=$(mktemp -d "${TMPDIR:-/tmp}/go-builder.XXXXXX")
trap 'rm -rf "$rootfs"' EXIT

echo "$PROG: building $tag from $goroot ($goversion) in $rootfs"
mkdir -p "$rootfs/bin" "$rootfs/usr/local" "$rootfs/etc/ssl/certs" \
	"$rootfs/go" "$rootfs/root/.cache" "$rootfs/src" "$rootfs/tmp"
chmod 1777 "$rootfs/tmp"

# GOROOT/test is Go's own test suite: 20 MB a build never reads.
tar -C "$goroot" --exclude=./test -cf - . | (mkdir -p "$rootfs/usr/local/go" && tar -C "$rootfs/usr/local/go" -xf -)

cp "$busybox" "$rootfs/bin/busybox"
for applet in $("$busybox" --list-full); do
	[ "$applet" = bin/busybox ] && continue
	mkdir -p "$rootfs/$(dirname "$applet")"
	ln -sf /bin/busybox "$rootfs/$applet"
done

if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
	cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
else
	echo "$PROG: warning: no /etc/ssl/certs/ca-certificates.crt on this host; the image will trust no TLS server" >&2
fi

printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"

# Sorted, owner-neutral archive: the same toolchain gives the same layer.
tar -C "$rootfs" --sort=name --owner=0 --group=0 --numeric-owner \
	--mtime='2000-01-01 00:00:00Z' -cf - . |
	docker import \
		--change 'ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'ENV GOROOT=/usr/local/go' \
		--change 'ENV GOPATH=/go' \
		--change 'ENV GOCACHE=/root/.cache/go-build' \
		--change 'ENV HOME=/root' \
		--change 'ENV GOTOOLCHAIN=local' \
		--change 'ENV CGO_ENABLED=0' \
		--change 'WORKDIR /src' \
		--change 'CMD ["/bin/sh"]' \
		--change "LABEL org.opencontainers.image.title=go-builder org.opencontainers.image.version=${goversion#go} org.opencontainers.image.description=\"Go toolchain and busybox, built from the host's GOROOT\"" \
		--message "go-builder from $goroot ($goversion)" \
		- "$tag" >/dev/null

docker run --rm "$tag" go version >/dev/null || die "$tag was imported but 'go version' fails inside it"
size=$(docker image inspect -f '{{.Size}}' "$tag")
echo "$PROG: built $tag ($((size / 1024 / 1024)) MB); 'go version' runs inside it"
