package mysql

// Debian's MariaDB layout: the defaults of the resource agent's
// parameters (ocf:haconf:mariadb).
const (
	DefaultBinary = "/usr/sbin/mariadbd"
	DefaultPid    = "/run/mysqld/mysqld.pid"
	DefaultSocket = "/run/mysqld/mysqld.sock"
	DefaultLog    = "/var/log/mysql/error.log"
)
