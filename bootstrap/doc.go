// Package bootstrap turns two fresh controllers into a working pair:
// preflight checks (each failure listed with its fix), secrets shared
// without exposure, and the idempotent steps that follow.
package bootstrap
