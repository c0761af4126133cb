// Package cli is the contract every haconf binary keeps with its users and
// their scripts, built on cobra: the exit codes (decided in ExitCode only),
// usage errors, the -o/--output flag with its allowed values, and the one
// JSON writer. It holds plumbing only; nothing in it knows about clusters.
//
// Exit codes:
//
//	0   ok (status: healthy)
//	1   a failure, a failed check, or status: degraded
//	2   status: down
//	3   the configuration is invalid
//	64  usage: unknown command, bad flag or flag value, wrong arguments
//	70  internal error: a bug (a recovered panic, or an error marked internal)
package cli
