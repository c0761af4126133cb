# haconf: `make` lists the targets.
SHELL := /bin/bash
GO ?= $(shell command -v go || echo /usr/local/go/bin/go)
BIN := bin/haconf
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

# Debian packages the tests and the lab use (the real tools, not fakes).
DEB_PACKAGES := corosync pacemaker pacemaker-cli-utils drbd-utils resource-agents fence-agents \
	haproxy mariadb-server mariadb-client rabbitmq-server user-mode-linux kmod lvm2 \
	iproute2 iputils-ping busybox e2fsprogs util-linux ansible-core ansible-lint

.DEFAULT_GOAL := help
.PHONY: help build test test-unit lint bench demo deps fuzz clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

build: ## build bin/haconf and bin/haconf-agent (the resource agents, installed beside it)
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ ./cmd/haconf ./cmd/haconf-agent

deps: ## install the Debian packages the tests and the lab need (as root; no-op when present)
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

test: deps build ## everything, for real: unit, integration (real tools, MariaDB) and lab end-to-end (as root)
	$(GO) vet ./...
	$(GO) test -timeout 40m -count=1 ./...

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

bench: deps build ## benchmarks; writes bench/RESULTS.md (machine and date included)
	bench/run

demo: deps build ## the lab demo: two controllers on this machine
	$(BIN) lab demo

clean: ## remove build output
	rm -rf bin
