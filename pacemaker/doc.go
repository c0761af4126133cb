// Package pacemaker drives Corosync 3.x and Pacemaker 2.1: their sections of
// haconf.yaml, the CIB haconf writes, offline checks (crm_verify) and
// simulated transitions (crm_simulate), the live status (crm_mon), and the
// OCF resource agent protocol haconf's own agents speak ([RunAgent]).
package pacemaker
