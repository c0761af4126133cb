// Package pacemaker drives Corosync 3.x and Pacemaker 2.1: their sections of
// haconf.yaml, the CIB haconf writes, offline checks (crm_verify) and
// simulated transitions (crm_simulate), and the live status (crm_mon).
package pacemaker
