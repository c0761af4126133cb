// Package workload is the client traffic the lab runs through a failover,
// and the proof that nothing acknowledged was lost: rows written one at a
// time to MariaDB through the VIP (Writer), and numbered persistent
// messages published with publisher confirms to a mirrored RabbitMQ queue
// (Publisher), drained and checked afterwards (Drain, Verify).
//
// The AMQP client is github.com/rabbitmq/amqp091-go (AMQP 0-9-1), tested
// against RabbitMQ 3.10.8 (classic durable and quorum queues); the SQL
// client is github.com/go-sql-driver/mysql, used against MariaDB 10.11.
// Lab-only: nothing here ships in haconf or haconf-agent.
package workload
