#!/bin/sh
# Regenerates the crm_mon fixtures from the CIB haconf renders for the
# example configuration, with the real Pacemaker 2.1.5 tools (no cluster):
#   haconf config example > ex.yaml && haconf render -c ex.yaml --node ctl1 --root R
#   sh gen.sh R/etc/haconf/cib.xml OUTDIR
set -eu
base=$1 out=$2 tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mon() { CIB_file=$1 crm_mon --output-as=xml --inactive; }
settle() { for _ in 1 2 3 4 5; do crm_simulate -x "$1" -S -O "$1" >/dev/null; done; }
s=$tmp/steady.xml
crm_simulate -x "$base" --quorum 1 --node-up ctl1 --node-up ctl2 -O "$s" >/dev/null
CIB_file=$s cibadmin --modify --xml-text '<cib dc-uuid="1"/>'
for n in ctl1 ctl2; do CIB_file=$s crm_attribute -N $n -n master-drbd-r0 -v 10000 -l reboot; done
settle "$s"
mon "$s" >"$out/ctl1-active.xml"

f=$tmp/f.xml; cp "$s" "$f"
CIB_file=$f crm_attribute -N ctl2 -n standby -v on -l forever; settle "$f"
mon "$f" >"$out/ctl2-standby.xml"

cp "$s" "$f"; crm_simulate -x "$f" -S -O "$f" --node-fail ctl2 >/dev/null; settle "$f"
mon "$f" >"$out/ctl2-failed.xml"

cp "$s" "$f"; CIB_file=$f crm_attribute --type crm_config -n maintenance-mode -v true
mon "$f" >"$out/maintenance.xml"

# DRBD's crm-fence-peer handler on ctl1 while ctl2's disk is outdated.
cp "$s" "$f"; CIB_file=$f crm_attribute -N ctl2 -n master-drbd-r0 -l reboot -D
CIB_file=$f cibadmin --create --scope constraints --xml-text '<rsc_location rsc="drbd-r0-clone" id="drbd-fence-by-handler-r0-drbd-r0-clone"><rule role="Promoted" score="-INFINITY" id="drbd-fence-by-handler-r0-rule-drbd-r0-clone"><expression attribute="#uname" operation="ne" value="ctl1" id="drbd-fence-by-handler-r0-expr-1-drbd-r0-clone"/></rule></rsc_location>'
settle "$f"; mon "$f" >"$out/fence-peer-ctl1.xml"

cp "$s" "$f"; CIB_file=$f crm_resource --ban -r g-services -N ctl2 2>/dev/null
mon "$f" >"$out/services-banned-ctl2.xml"

# haconf switchover's move, settled, before its constraint is cleared.
cp "$s" "$f"; CIB_file=$f crm_resource --move --promoted -r drbd-r0-clone -N ctl2 --lifetime PT7M >/dev/null; settle "$f"
mon "$f" >"$out/ctl2-active-moved.xml"

# mariadb fails to start on ctl2 during the move.
cp "$s" "$f"; CIB_file=$f crm_resource --move --promoted -r drbd-r0-clone -N ctl2 --lifetime PT7M >/dev/null
crm_simulate -x "$f" -S -O "$f" --op-fail mariadb_start_0@ctl2=1 >/dev/null
mon "$f" >"$out/move-mariadb-failed-ctl2.xml"
