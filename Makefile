# zk — build, test and install. `make help` lists the targets.

PREFIX  ?= /usr/local
DESTDIR ?=
CARGO   ?= cargo
# Cargo's output directory; CARGO_TARGET_DIR moves it, as it moves cargo's.
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
BIN     := $(TARGET_DIR)/release/zk

# The static binary: glibc linked statically (+crt-static). The gnu target is named
# explicitly so that RUSTFLAGS reach only the binary, not build scripts and proc macros,
# and so that its artifacts live apart from the ordinary build's.
TARGET     := x86_64-unknown-linux-gnu
STATIC_BIN := $(TARGET_DIR)/$(TARGET)/release/zk

VERSION := $(shell sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n 1)

# Install locations. The unit, sysusers and tmpfiles entries go under $(PREFIX)/lib, which
# systemd searches for both /usr and /usr/local; the configuration always goes to
# $(SYSCONFDIR)/zk, where the unit looks for it.
BINDIR        ?= $(PREFIX)/bin
MANDIR        ?= $(PREFIX)/share/man
DOCDIR        ?= $(PREFIX)/share/doc/zk
SYSCONFDIR    ?= /etc
UNITDIR       ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR   ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR   ?= $(PREFIX)/lib/tmpfiles.d

MAN1 := man/zk.1 man/zk-server.1 man/zk-status.1 man/zk-snapshot.1 man/zk-cli.1 man/zk-bench.1
MAN5 := man/zoo.cfg.5
PACKAGING := packaging/zk.service packaging/zk.sysusers.conf packaging/zk.tmpfiles.conf \
             packaging/zoo.cfg.example

# `make dist` output; DISTDIR may point elsewhere (the tests use a temp directory).
DISTDIR  ?= $(TARGET_DIR)/dist
DISTNAME := zk-$(VERSION)-x86_64-linux
TARBALL  := $(DISTDIR)/$(DISTNAME).tar.gz

.PHONY: all build run test test-deps test-unit test-interop bench-compare bench-compare-ensemble check fmt clippy clean help \
        static install uninstall dist deb rpm

all: build

help:
	@echo "make            release build (target/release/zk)"
	@echo "make run        build and run a standalone server on port 2181, data in ./data"
	@echo "make test       every test: cargo tests, then interop tests with real clients"
	@echo "make check      rustfmt check, clippy -D warnings, then every test"
	@echo "make static     statically linked x86_64 binary ($(STATIC_BIN))"
	@echo "make install    static binary, man pages, systemd unit, sysusers/tmpfiles entries,"
	@echo "                example config; honours PREFIX (default /usr/local) and DESTDIR"
	@echo "make uninstall  remove what make install installed (never the config or data)"
	@echo "make dist       $(DISTDIR)/$(DISTNAME).tar.gz: binary, man pages, unit, config, README"
	@echo "make deb        a .deb from the dist tarball (dpkg-deb; packaging/build-deb.sh)"
	@echo "make rpm        an .rpm from the dist tarball (rpmbuild; packaging/rpm/zk.spec)"
	@echo "make bench-compare           standalone zk vs Apache ZooKeeper 3.8, side by side"
	@echo "make bench-compare-ensemble  3-server zk vs 3-server Apache, with leader kill -9 failovers"

build:
	$(CARGO) build --release --locked

run: build
	$(abspath $(BIN)) server

test-unit:
	$(CARGO) test --release --locked

# Interop tests run real ZooKeeper clients (zkCli.sh, kazoo, Curator, cli_mt) against the
# release binary, and Apache ZooKeeper 3.8 beside it for side-by-side comparisons.
test-interop: build
	ZK_BIN=$(abspath $(BIN)) bash tests/interop/run.sh

# Installs what the tests need when it is missing (Debian packages, kazoo, pytest); needs
# root for apt-get, so as another user it only says what is missing.
test-deps:
	@if [ "$$(id -u)" = 0 ]; then bash tests/interop/setup.sh; \
	else echo "test-deps: not root; install what tests/interop/setup.sh lists if tests fail"; fi

test: test-deps test-unit test-interop

# Side-by-side with Apache ZooKeeper 3.8 on this machine (servers on CPU 0, load on CPU 1);
# writes the table to bench-result.md. QUICK=1 for a one-minute smoke run.
bench-compare: build
	ZK_BIN=$(abspath $(BIN)) bash tests/bench/compare.sh $(if $(QUICK),--quick) bench-result.md
# 3-server ensembles, Apache then zk, with kill -9 failovers; QUICK=1 for a smoke run.
bench-compare-ensemble: build
	ZK_BIN=$(abspath $(BIN)) bash tests/bench/compare_ensemble.sh $(if $(QUICK),--quick) bench-ensemble-result.md

fmt:
	$(CARGO) fmt

clippy:
	$(CARGO) clippy --all-targets --locked -- -D warnings

check:
	$(CARGO) fmt --check
	$(MAKE) clippy
	$(MAKE) test

clean:
	$(CARGO) clean

# Static glibc still loads NSS modules for getaddrinfo at run time; zk reads /etc/hosts
# itself (src/net/resolve.rs), so names such as node-1 resolve on any host.
static:
	RUSTFLAGS='$(RUSTFLAGS) -C target-feature=+crt-static' \
		$(CARGO) build --release --locked --target $(TARGET)
	@ldd $(STATIC_BIN) 2>&1 | grep -Eq 'not a dynamic executable|statically linked' \
		|| { echo "$(STATIC_BIN) is not statically linked:"; ldd $(STATIC_BIN); exit 1; }

# The existing /etc/zk/zoo.cfg is never overwritten; the example is always refreshed.
install: static
	install -D -m 0755 $(STATIC_BIN) $(DESTDIR)$(BINDIR)/zk
	install -d -m 0755 $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5
	install -m 0644 $(MAN1) $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 $(MAN5) $(DESTDIR)$(MANDIR)/man5/
	install -d -m 0755 $(DESTDIR)$(UNITDIR)
	sed 's|^ExecStart=/usr/bin/zk |ExecStart=$(BINDIR)/zk |' packaging/zk.service \
		> $(DESTDIR)$(UNITDIR)/zk.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/zk.service
	install -D -m 0644 packaging/zk.sysusers.conf $(DESTDIR)$(SYSUSERSDIR)/zk.conf
	install -D -m 0644 packaging/zk.tmpfiles.conf $(DESTDIR)$(TMPFILESDIR)/zk.conf
	install -D -m 0644 packaging/zoo.cfg.example $(DESTDIR)$(SYSCONFDIR)/zk/zoo.cfg.example
	test -e $(DESTDIR)$(SYSCONFDIR)/zk/zoo.cfg \
		|| install -m 0644 packaging/zoo.cfg.example $(DESTDIR)$(SYSCONFDIR)/zk/zoo.cfg
	install -D -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	@if [ -z "$(DESTDIR)" ]; then \
		echo "Now: systemd-sysusers zk.conf; systemd-tmpfiles --create zk.conf;"; \
		echo "     systemctl daemon-reload; systemctl enable --now zk"; \
	fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/zk $(DESTDIR)$(UNITDIR)/zk.service \
		$(DESTDIR)$(SYSUSERSDIR)/zk.conf $(DESTDIR)$(TMPFILESDIR)/zk.conf \
		$(DESTDIR)$(SYSCONFDIR)/zk/zoo.cfg.example $(DESTDIR)$(DOCDIR)/README.md
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(MAN1))) \
		$(addprefix $(DESTDIR)$(MANDIR)/man5/,$(notdir $(MAN5)))

# A flat tarball: the static binary (debug info stripped, symbols kept), the man pages,
# the unit, sysusers/tmpfiles entries, example config and README. Reproducible: sorted,
# owned by root, dated by the last commit (or the epoch outside git).
dist: static
	rm -rf $(DISTDIR)/$(DISTNAME) $(TARBALL)
	install -d $(DISTDIR)/$(DISTNAME)/man
	cp $(STATIC_BIN) $(DISTDIR)/$(DISTNAME)/zk
	strip --strip-debug $(DISTDIR)/$(DISTNAME)/zk
	cp $(MAN1) $(MAN5) $(DISTDIR)/$(DISTNAME)/man/
	cp $(PACKAGING) README.md $(DISTDIR)/$(DISTNAME)/
	tar --sort=name --owner=0 --group=0 --numeric-owner \
		--mtime="@$$(git log -1 --format=%ct 2>/dev/null || echo 0)" \
		-C $(DISTDIR) -czf $(TARBALL) $(DISTNAME)
	rm -rf $(DISTDIR)/$(DISTNAME)
	cd $(DISTDIR) && sha256sum $(DISTNAME).tar.gz > $(DISTNAME).tar.gz.sha256
	@echo "$(TARBALL)"

deb: dist
	bash packaging/build-deb.sh $(TARBALL) $(DISTDIR)

# rpmbuild on a Debian build host has no rpm database to check BuildRequires against,
# hence --nodeps; the spec needs nothing but the tarball.
rpm: dist
	rm -rf $(DISTDIR)/rpmbuild
	rpmbuild -bb --nodeps \
		--define "_topdir $(abspath $(DISTDIR))/rpmbuild" \
		--define "_sourcedir $(abspath $(DISTDIR))" \
		--define "_rpmdir $(abspath $(DISTDIR))" \
		--define "zk_version $(VERSION)" \
		packaging/rpm/zk.spec
