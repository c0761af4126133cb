// Package backup takes, restores and proves logical backups of the
// controller database. Supported: MariaDB 10.4 and later (BACKUP STAGE,
// binlog_snapshot_file/position, CRC32C needs 10.8; tested with 10.11),
// through github.com/go-sql-driver/mysql only; mariadb-binlog (10.4+) is
// run to replay a differential, and mariadbd/mariadb-install-db to start
// the drill's scratch server. MySQL is not supported (no BACKUP STAGE, no
// binlog_snapshot_position). Off-host copies go over SSH's SFTP subsystem
// (golang.org/x/crypto/ssh and github.com/pkg/sftp; tested with OpenSSH
// 9.2's sshd and internal-sftp).
//
// # Full backups: one snapshot, many readers
//
// A full opens Options.Parallel connections that all read the same
// snapshot. While one extra connection holds BACKUP STAGE BLOCK_COMMIT,
// each worker runs START TRANSACTION WITH CONSISTENT SNAPSHOT; no
// transaction can commit in between, so every worker sees the same data,
// and MariaDB reports the same binlog_snapshot_file/position to each
// (checked: a disagreement aborts the run). The lock is held for the
// milliseconds it takes to start the transactions. BLOCK_COMMIT was
// preferred to FLUSH TABLES WITH READ LOCK because FTWRL waits for every
// running query to finish while it already blocks all writers, so one long
// SELECT stalls the whole cloud; BLOCK_COMMIT only holds commits. Taking one
// snapshot per worker at different times without a lock would be faster to
// write and wrong: tables read by different workers would not agree.
// DDL after the snapshot makes the affected table's read fail (InnoDB:
// "table definition has changed"), which fails the run instead of writing
// an inconsistent backup. Before the snapshot the binary log is rotated
// (FLUSH BINARY LOGS) so that the next differential starts near the
// beginning of a file.
//
// Tables are read in parallel across tables and across primary-key
// ranges: a table with a single integer key and more than ChunkRows rows
// is split into ranges (PlanChunks; the outer ranges are open, so no row is
// lost to a stale estimate), anything else is one chunk. The largest work
// is scheduled first. Rows are written in the LOAD DATA text format
// (EncodeRow) as the column bytes stored on the server (character_set_results
// = binary; restored with CHARACTER SET binary: no conversion anywhere),
// compressed with s2 (default) or zstd (one encoder per worker; see
// CompressS2 for the measured trade-off), and each file's SHA-256 is
// computed while it is written. Generated columns are
// not dumped; the server recomputes them. A few types are selected through
// an expression (ColumnExpr) because their text form does not survive the
// trip: FLOAT (printed with 6 digits), DOUBLE, INET6/INET4/UUID.
//
// Each table's row count and checksum are recorded in the manifest: the
// order-independent sum of a 64-bit digest per row (CRC32 and CRC32C of
// the row bytes with a NULL map; CRC32 alone is too weak). A full computes
// it in Go from the rows it streams anyway (RowSum), so it costs no second
// scan; ChecksumQuery makes the server compute exactly the same value
// (checked by the integration test on every column type it seeds), which is
// how a differential records it without transferring rows and how a drill
// checks a restored server. These recorded values are what a restore is
// proven against.
//
// # Differentials: the binary log
//
// A differential stores the binary log from its full's snapshot position
// up to its own snapshot position (the last file is cut exactly there),
// compressed; restore replays it on top of the full with mariadb-binlog.
// Deletes, updates, inserts and schema changes are all in the log. The
// measured alternatives were worse here (bench/results/backup.md and the
// shared perf notes):
//
//   - chunk checksums are useless for scattered changes: with 1% of rows
//     changed at random, 99.9% of 1000-row chunks change;
//   - a row-level digest stream (primary key plus a server-side 64-bit
//     digest, merge-joined with the full's sorted list) finds every change
//     but must scan every row, and a full scan alone costs about 13% of a
//     mysqldump; with the digest transfer it measured 30-46% of mysqldump's
//     time, i.e. about as slow as haconf's own full, far above the 20%
//     target;
//   - the binary log costs in proportion to the changes, not to the data.
//
// Its conditions are checked, each with its own error: log_bin must be on
// (haconf enables it by default, mysql.binary_log; ErrNoBinlog), the
// differential must run on the database host because it reads the log files
// from log_bin_basename's directory (the watchdog runs it on the active
// node), and the binary log since the full must be continuous on the server
// it reads (ErrChainBroken). The source is identified by what moves with the
// data, never by @@hostname, which changes at every failover while DRBD
// moves the same datadir and binary logs to the other node: the full
// records the GTID state at its snapshot (BINLOG_GTID_POS), server_id and
// gtid_domain_id (MariaDB 10.11 has no server_uuid); the differential
// checks that the full's binlog file is one of this server's (same
// basename) and still there (ErrBinlogPurged), that this server computes
// the same GTID state at the full's position (ErrOtherServer otherwise: a
// different database), and that the file sequence from there is unbroken.
// The scheduled differential job answers a broken chain by taking a full at
// once and recording why (state.json last_note); the rendered
// expire_logs_days keeps the logs twice the full interval
// (Config.BinlogExpireDays). Writes made with sql_log_bin = 0 are
// invisible to it; the drill catches that (the recorded checksums no longer
// match). The log covers the whole server, so the full must cover every
// database that is written to (the default: all but the system schemas);
// with a narrower Databases list, replaying writes to a database outside it
// fails the restore. Account changes replay too (CREATE USER, GRANT).
//
// By default (Options.Checksums, backup.differential_checksums) a
// differential also records every table's checksum at its snapshot, taken
// the same way as the full's, so that the drill can prove the restored
// chain. That is a server-side scan (no rows transferred); it is the larger
// part of a differential's time and can be turned off.
//
// # Repository
//
// One directory per backup, named by UTC time and type so that names
// sort in time order. A run writes into .tmp-<id>, fsyncs every file and
// directory, writes manifest.json (files with size, uncompressed size and
// SHA-256, tables with columns, rows and checksum, binlog position) and its
// .sha256 last, and renames the directory: a backup interrupted at any
// point is never listed. A manifest is used only when it matches its
// .sha256 (Load); a directory whose manifest is missing, truncated, edited
// or unparsable is damaged, listed as such (Scan) and never restored.
// Leftover .tmp- directories are removed by the next run. An flock on .lock
// keeps two runs from overlapping (and is released if the process dies).
// Retention keeps the newest N fulls and their differentials.
// Configuration files (haconf.yaml, the CIB, rendered files, RabbitMQ
// definitions) are archived in config.tar.zst. All files are 0600. A run
// first checks the repository's free space against an estimate (a full:
// the databases' data length; a differential: the binary logs to copy)
// and fails with ErrNoSpace naming both numbers.
//
// # Restore and drill
//
// Restore first checks, changing nothing: every manifest of the chain
// against its .sha256, every file's size and SHA-256, the free space (the
// target's datadir when the target is on this machine, the temporary
// directory for the binary logs), and the target: a backup database that
// holds data there is refused unless forced, an empty one (a fresh
// server's test database) is not data. It then creates each database under
// a staging name with its tables, loads every data file in parallel with
// LOAD DATA LOCAL INFILE (foreign and unique checks off), checking each
// file's row count against what the server reports loaded, and any warning
// the server raises while loading (a value it could not store and replaced)
// fails it too, so a short, silently empty or silently altered load fails
// (mydumper's silent-empty-table failure cannot pass); a loader chosen as a
// deadlock victim reloads its file. Only then are the databases published:
// a same-named database of the target is moved aside (tables renamed, other
// objects recorded), the staged tables are renamed into place, accounts
// the target lacks are created, then views, routines, triggers and events,
// then the differential is replayed. Any failure rolls all of it back;
// the moved-aside databases are dropped only after success (see Restore
// for what a rollback cannot undo). Drill does this into
// a scratch mariadbd it starts on 127.0.0.1 with a temporary datadir and a
// random password, and compares every table's row count and checksum with
// the values recorded in the snapshot.
//
// # Privileges and secrets
//
// The backup account needs SELECT, SHOW VIEW, TRIGGER, EVENT and RELOAD
// (BACKUP STAGE, FLUSH BINARY LOGS), plus SELECT on mysql.user for Users;
// a differential also reads the binary log files, so it runs as a user
// that can read MariaDB's log directory (root on the controller). A
// restore target needs an account with all privileges, including BINLOG
// REPLAY (or SUPER) to replay a differential, and local_infile = ON. The
// password comes from MYSQL_PWD or the [client] section of an option file
// that only its owner can read (ResolveDSN; with an explicit DSN the file
// is optional); a DSN carrying a password is refused, and errors and logs
// name user@address, never the password.
//
// # Off-host copies
//
// Copy puts every complete backup that a target of backup.copies lacks
// there over SFTP: into .tmp-<id>, each file hashed as it is read here and
// read back there to be compared with the manifest's SHA-256, then renamed
// to <id>, so that the target, laid out as a repository, never shows a
// half-copied backup. What the target holds is judged by its manifest's
// SHA-256 and each file's size (Verify: each file's SHA-256); retention is
// planned over both listings (planCopy), so the target is never sent a
// backup it would drop, and applied to what it holds after the copy. Only
// the SFTP subsystem is used (no shell on the target), which is also why
// the read-back crosses the network a second time: an sftp-only account
// cannot run sha256sum. Host keys are checked against known_hosts_file
// (ErrHostKeyUnknown, ErrHostKeyChanged); the key comes from identity_file,
// never a password. Each target's last run is kept in copies.json
// (ReadCopyState, Uncopied) for status and metrics. Fetch brings a chain
// back, verified as it is read, into a local directory that Restore then
// reads as a repository.
//
// Scheduler runs full, differential and drill jobs on cron schedules only
// where MariaDB is active, never two at once, recording their outcomes in
// the repository's state.json for monitoring, and runs the copy after each
// full or differential job, in the background.
package backup
