# haconf: `make` lists the targets.
SHELL := /bin/bash
GO ?= $(shell command -v go || echo /usr/local/go/bin/go)
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)

# The compute lab (lab/cloud): Debian 12's OpenStack services, run by the lab as plain processes
# (nova-compute from python3-nova: the nova-compute package would pull qemu and libvirt).
CLOUD_DEB_PACKAGES := keystone placement-api nova-api nova-conductor nova-scheduler nova-common python3-nova \
	masakari-api masakari-engine python3-pymysql uwsgi-core uwsgi-plugin-python3 python3-openstackclient

# Debian packages the tests and the lab use (the real tools, not fakes).
DEB_PACKAGES := corosync pacemaker pacemaker-cli-utils drbd-utils resource-agents fence-agents \
	haproxy mariadb-server mariadb-client rabbitmq-server user-mode-linux kmod lvm2 \
	iproute2 iputils-ping iputils-clockdiff ipmitool busybox e2fsprogs util-linux ansible-core ansible-lint openssh-server \
	$(CLOUD_DEB_PACKAGES)
# lintian checks make deb's packages (packaging's test).
DEB_PACKAGES += lintian

.DEFAULT_GOAL := help
.PHONY: help build deb test test-unit lint bench demo deps fuzz clean root

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

build: ## build bin/haconf, bin/haconf-agent (the resource agents, installed beside it) and bin/haconf-lab (the lab)
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ ./cmd/haconf ./cmd/haconf-agent ./cmd/haconf-lab

deb: ## build dist/haconf_VERSION_amd64.deb and dist/haconf-controller_VERSION_all.deb (version from git describe)
	$(GO) run ./packaging -o dist -go $(GO)

deps: ## install the Debian packages the tests and the lab need (as root; no-op when present)
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		export DEBIAN_FRONTEND=noninteractive; \
		debconf-set-selections lab/cloud/debconf.txt || exit 1; \
		policy=/usr/sbin/policy-rc.d; \
		if [ ! -e $$policy ]; then \
			trap 'rm -f '$$policy EXIT; \
			printf '#!/bin/sh\n# make deps: no package starts a service while it is installed\nexit 101\n' > $$policy; \
			chmod 755 $$policy; \
		fi; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

root: # demo, test and bench need root: the lab makes bridges and UML nodes, deps runs apt-get
	@[ "$$(id -u)" = 0 ] || { echo "make $(MAKECMDGOALS) needs root (the lab creates bridges and User-Mode Linux nodes; apt-get installs what is missing): run it as root, or with sudo"; exit 1; }

test: root deps build ## everything, for real: unit, integration (real tools, MariaDB) and lab end-to-end (as root)
	$(GO) vet ./...
	$(GO) test -timeout 85m -count=1 ./...

test-unit: ## fast tests only (no real servers, no lab)
	$(GO) test -short ./...

lint: ## gofmt, go vet, staticcheck
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

fuzz: ## run each fuzz target for 20s
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep ^Fuzz); do \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 20s $$pkg || exit 1; \
		done; \
	done

bench: root deps build ## benchmarks; writes bench/RESULTS.md (machine and date included)
	bench/run

demo: root deps build ## the lab demo: two controllers on this machine
	bin/haconf-lab demo

clean: ## remove build output
	rm -rf bin dist
