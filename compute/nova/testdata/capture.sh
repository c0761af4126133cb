#!/bin/bash
# capture.sh OUTDIR: record the compute lab's real answers for package nova's
# tests. Brings the compute lab up (3 hosts), boots a few servers, records
# the read calls, crashes the host with the most servers, records the
# refusals and the evacuation, boots the host again, cleans up and brings
# the lab down. Each call NAME leaves NAME.req (method, URL, body sent),
# NAME.http (status line and headers) and NAME.json (the body).
#
# Run as root, under the machine-wide lab lock, from the repository's root:
#
#	go build -o /tmp/novacap/haconf-lab ./cmd/haconf-lab
#	go test -c -o /tmp/novacap/nova.test ./compute/nova   # optional
#	flock /run/lock/haconf-lab.lock bash compute/nova/testdata/capture.sh /tmp/novacap/out
#
# With /tmp/novacap/nova.test present it also runs TestNovaLab against the
# live lab, and lets that test evacuate the crashed host's last servers
# with package nova's client.
#
# Nothing secret is recorded: the token travels in a header (left out of
# keystone-token.http), the password only through a 0600 file.
set -u
LAB=${LAB:-/tmp/novacap/haconf-lab}
NOVATEST=${NOVATEST:-/tmp/novacap/nova.test}
OUT=${1:?usage: capture.sh OUTDIR}
mkdir -p "$OUT"
TMP=$(mktemp -d)
chmod 700 "$TMP"
CMV="OpenStack-API-Version: compute 2.53"
PMV="OpenStack-API-Version: placement 1.14"

log() { echo "$(date +%T) $*" >&2; }

down() {
	log "cleanup"
	[ -n "${TOKEN:-}" ] && cleanup_cloud
	"$LAB" compute down
	rm -rf "$TMP"
	log "lab down"
}
trap down EXIT

log "compute up"
"$LAB" compute up --hosts 3 --no-ha || exit 1
"$LAB" compute env >"$TMP/env"
. "$TMP/env"

# --- Keystone -----------------------------------------------------------
jq -n --arg u "$OS_USERNAME" --arg p "$OS_PASSWORD" --arg pr "$OS_PROJECT_NAME" \
	'{auth: {identity: {methods: ["password"], password: {user: {name: $u, domain: {name: "Default"}, password: $p}}},
	  scope: {project: {name: $pr, domain: {name: "Default"}}}}}' >"$TMP/auth.json"
curl -sS -D "$TMP/token.http" -o "$OUT/keystone-token.json" -H 'Content-Type: application/json' \
	--data @"$TMP/auth.json" "$OS_AUTH_URL/auth/tokens"
TOKEN=$(sed -n 's/^[Xx]-[Ss]ubject-[Tt]oken: *\([^\r]*\).*/\1/p' "$TMP/token.http")
grep -iv '^x-subject-token:' "$TMP/token.http" >"$OUT/keystone-token.http"
printf 'POST %s\n{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "%s", "domain": {"name": "Default"}, "password": "***"}}}, "scope": {"project": {"name": "%s", "domain": {"name": "Default"}}}}}\n' \
	"$OS_AUTH_URL/auth/tokens" "$OS_USERNAME" "$OS_PROJECT_NAME" >"$OUT/keystone-token.req"
[ -n "$TOKEN" ] || { log "no token"; exit 1; }
jq -n --arg u "$OS_USERNAME" --arg pr "$OS_PROJECT_NAME" \
	'{auth: {identity: {methods: ["password"], password: {user: {name: $u, domain: {name: "Default"}, password: "wrong"}}},
	  scope: {project: {name: $pr, domain: {name: "Default"}}}}}' >"$TMP/bad.json"
curl -sS -D "$OUT/keystone-wrong-password.http" -o "$OUT/keystone-wrong-password.json" -H 'Content-Type: application/json' \
	--data @"$TMP/bad.json" "$OS_AUTH_URL/auth/tokens"
sed 's/"password": "\*\*\*"/"password": "wrong"/' "$OUT/keystone-token.req" >"$OUT/keystone-wrong-password.req"
NOVA=$(jq -r '.token.catalog[] | select(.type == "compute") | .endpoints[] | select(.interface == "public") | .url' "$OUT/keystone-token.json")
PLACEMENT=$(jq -r '.token.catalog[] | select(.type == "placement") | .endpoints[] | select(.interface == "public") | .url' "$OUT/keystone-token.json")
log "nova $NOVA placement $PLACEMENT"

# rec NAME HEADER METHOD URL [BODY]: one call, recorded.
rec() {
	local name=$1 hdr=$2 method=$3 url=$4 body=${5:-}
	local args=(-sS -X "$method" -H 'Accept: application/json' -H "X-Auth-Token: ${TOKEN_OVERRIDE:-$TOKEN}"
		-D "$OUT/$name.http" -o "$OUT/$name.json")
	[ -n "$hdr" ] && args+=(-H "$hdr")
	[ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data "$body")
	curl "${args[@]}" "$url"
	printf '%s %s\n%s\n' "$method" "$url" "$body" >"$OUT/$name.req"
	log "$name: $(head -1 "$OUT/$name.http" | tr -d '\r')"
}

# call HEADER METHOD URL [BODY]: one call, not recorded; the body on stdout.
call() {
	local hdr=$1 method=$2 url=$3 body=${4:-}
	local args=(-sS -X "$method" -H 'Accept: application/json' -H "X-Auth-Token: $TOKEN" -H "$hdr")
	[ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data "$body")
	curl "${args[@]}" "$url"
}

servers() { call "$CMV" GET "$NOVA/servers/detail?all_tenants=1"; }

cleanup_cloud() {
	for id in $(servers | jq -r '.servers[] | select(.name | startswith("ha-")) | .id'); do
		call "$CMV" DELETE "$NOVA/servers/$id" >/dev/null
	done
	for i in $(seq 60); do
		[ "$(servers | jq '[.servers[] | select(.name | startswith("ha-"))] | length')" = 0 ] && break
		sleep 1
	done
	for id in $(call "$CMV" GET "$NOVA/os-server-groups?all_projects=True" | jq -r '.server_groups[] | select(.name | startswith("ha-")) | .id'); do
		call "$CMV" DELETE "$NOVA/os-server-groups/$id" >/dev/null
	done
	call "$CMV" GET "$NOVA/os-aggregates" | jq -r '.aggregates[] | select(.name | startswith("ha-")) | "\(.id) \(.hosts | join(" "))"' |
		while read -r id hosts; do
			for h in $hosts; do
				call "$CMV" POST "$NOVA/os-aggregates/$id/action" "{\"remove_host\": {\"host\": \"$h\"}}" >/dev/null
			done
			call "$CMV" DELETE "$NOVA/os-aggregates/$id" >/dev/null
		done
	for id in $(call "$CMV" GET "$NOVA/flavors" | jq -r '.flavors[] | select(.name == "m1.hatest") | .id'); do
		call "$CMV" DELETE "$NOVA/flavors/$id" >/dev/null
	done
	for id in $(call "$CMV" GET "$NOVA/os-services?binary=nova-compute" | jq -r '.services[] | select(.forced_down or .status == "disabled") | .id'); do
		call "$CMV" PUT "$NOVA/os-services/$id" '{"forced_down": false, "status": "enabled"}' >/dev/null
	done
}

# wait_settled NOTON LIMIT: until every ha- server (but $RACED) is ACTIVE
# or SHUTOFF, with no task, and not on host NOTON (or one is in ERROR).
wait_settled() {
	local noton=$1 limit=$2 n
	for i in $(seq "$limit"); do
		n=$(servers | jq --arg h "$noton" --arg skip "${RACED:-}" '[.servers[] | select(.name | startswith("ha-")) | select(.id != $skip)
			| select((.status != "ACTIVE" and .status != "SHUTOFF") or .["OS-EXT-STS:task_state"] != null or .["OS-EXT-SRV-ATTR:host"] == $h)] | length')
		[ "$n" = 0 ] && { log "settled after ${i}s"; return 0; }
		servers | jq -e --arg skip "${RACED:-}" '[.servers[] | select(.name | startswith("ha-")) | select(.id != $skip) | select(.status == "ERROR")] | length > 0' >/dev/null &&
			{ log "a server is in ERROR"; return 1; }
		sleep 1
	done
	log "not settled after ${limit}s"
	return 1
}

cleanup_cloud

rec nova-versions "" GET "${NOVA%/v2.1}/"
rec nova-version "" GET "$NOVA/"
rec placement-versions "" GET "$PLACEMENT/"

# --- Set up: a flavor with extra specs, a server group, an aggregate, servers.
FLAVOR=$(call "$CMV" POST "$NOVA/flavors" '{"flavor": {"name": "m1.hatest", "ram": 256, "vcpus": 1, "disk": 1, "OS-FLV-EXT-DATA:ephemeral": 1, "swap": 32}}' | jq -r .flavor.id)
call "$CMV" POST "$NOVA/flavors/$FLAVOR/os-extra_specs" '{"extra_specs": {"haconf:evacuate": "true", "haconf:tier": "1"}}' >/dev/null
LABFLAVOR=$(call "$CMV" GET "$NOVA/flavors" | jq -r '.flavors[] | select(.name == "m1.lab") | .id')
GROUP=$(call "$CMV" POST "$NOVA/os-server-groups" '{"server_group": {"name": "ha-anti", "policies": ["anti-affinity"]}}' | jq -r .server_group.id)
AGG=$(call "$CMV" POST "$NOVA/os-aggregates" '{"aggregate": {"name": "ha-ssd", "availability_zone": "az-ssd"}}' | jq -r .aggregate.id)
call "$CMV" POST "$NOVA/os-aggregates/$AGG/action" '{"add_host": {"host": "cmp3"}}' >/dev/null
call "$CMV" POST "$NOVA/os-aggregates/$AGG/action" '{"set_metadata": {"metadata": {"ssd": "true", "haconf-reserve": "2"}}}' >/dev/null
IMAGE=00000000-0000-0000-0000-00000000f001
boot() { # boot NAME FLAVOR [HINTS]
	local hints=${3:-}
	call "$CMV" POST "$NOVA/servers" "{\"server\": {\"name\": \"$1\", \"flavorRef\": \"$2\", \"imageRef\": \"$IMAGE\", \"networks\": \"none\",
		\"metadata\": {\"haconf:evacuate\": \"true\", \"owner\": \"lab\"}, \"tags\": [\"ha\", \"tier-1\"]}${hints}}" | jq -r .server.id
}
boot ha-anti-1 "$FLAVOR" ", \"os:scheduler_hints\": {\"group\": \"$GROUP\"}" >/dev/null
boot ha-anti-2 "$FLAVOR" ", \"os:scheduler_hints\": {\"group\": \"$GROUP\"}" >/dev/null
for i in 1 2 3 4 5 6 7; do boot ha-vm$i "$LABFLAVOR" >/dev/null; done
wait_settled "" 300 || exit 1
servers | jq -r '.servers[] | select(.name | startswith("ha-")) | "\(.name) \(.["OS-EXT-SRV-ATTR:host"])"' >&2

# The victim: the host with the most servers; on it, one server stopped.
VICTIM=$(servers | jq -r '[.servers[] | select(.name | startswith("ha-")) | .["OS-EXT-SRV-ATTR:host"]] | group_by(.) | max_by(length) | .[0]')
TARGET=$(call "$CMV" GET "$NOVA/os-services?binary=nova-compute" | jq -r --arg v "$VICTIM" '[.services[] | select(.host != $v) | .host] | sort | .[0]')
# ha-vm* first: FIRST goes to a host of our choice, which an anti-affinity
# member might not be allowed on.
ONVICTIM=$(servers | jq -r --arg h "$VICTIM" '[.servers[] | select(.name | startswith("ha-")) | select(.["OS-EXT-SRV-ATTR:host"] == $h)] | sort_by(.name) | reverse | .[].id')
log "victim $VICTIM, target $TARGET, servers there: $(echo $ONVICTIM)"
set -- $ONVICTIM
FIRST=$1
STOPPED=${2:-}
RACED=${3:-} # evacuated twice at once, to record what Nova does
if [ -n "$STOPPED" ]; then
	call "$CMV" POST "$NOVA/servers/$STOPPED/action" '{"os-stop": null}' >/dev/null
	wait_settled "" 120
fi

# --- Reads -----------------------------------------------------------------
rec services "$CMV" GET "$NOVA/os-services?binary=nova-compute"
rec servers-on-host "$CMV" GET "$NOVA/servers/detail?all_tenants=1&host=$VICTIM"
URL="$NOVA/servers/detail?all_tenants=1&host=$VICTIM&limit=2"
for p in 1 2 3 4; do
	rec servers-on-host-page$p "$CMV" GET "$URL"
	URL=$(jq -r '.servers_links[]? | select(.rel == "next") | .href' "$OUT/servers-on-host-page$p.json")
	[ -n "$URL" ] || break
done
rec server "$CMV" GET "$NOVA/servers/$FIRST"
[ -n "$STOPPED" ] && rec server-stopped "$CMV" GET "$NOVA/servers/$STOPPED"
rec server-not-found "$CMV" GET "$NOVA/servers/00000000-0000-0000-0000-000000000000"
rec server-groups "$CMV" GET "$NOVA/os-server-groups?all_projects=True"
rec server-groups-page "$CMV" GET "$NOVA/os-server-groups?all_projects=True&limit=1000&offset=0"
rec server-groups-end "$CMV" GET "$NOVA/os-server-groups?all_projects=True&limit=1000&offset=$(jq '.server_groups | length' "$OUT/server-groups-page.json")"
rec aggregates "$CMV" GET "$NOVA/os-aggregates"
TOKEN_OVERRIDE=gAAAAABinvalidtoken rec unauthorized "$CMV" GET "$NOVA/os-services?binary=nova-compute"
rec resource-providers "$PMV" GET "$PLACEMENT/resource_providers"
for rp in $(jq -r '.resource_providers[] | "\(.uuid)=\(.name)"' "$OUT/resource-providers.json"); do
	rec "inventories-${rp#*=}" "$PMV" GET "$PLACEMENT/resource_providers/${rp%=*}/inventories"
	rec "usages-${rp#*=}" "$PMV" GET "$PLACEMENT/resource_providers/${rp%=*}/usages"
done
rec allocation-candidates "OpenStack-API-Version: placement 1.29" GET "$PLACEMENT/allocation_candidates?resources=VCPU:1"
rec placement-not-found "$PMV" GET "$PLACEMENT/resource_providers/00000000-0000-0000-0000-000000000000/inventories"

if [ -x "$NOVATEST" ]; then
	log "TestNovaLab (reads)"
	HACONF_NOVA_LAB=1 "$NOVATEST" -test.run 'TestNovaLab$' -test.v >&2
fi

# --- Failure: crash the victim, then the refusals and the evacuation -------
SVC=$(jq -r --arg h "$VICTIM" '.services[] | select(.host == $h) | .id' "$OUT/services.json")
log "crash $VICTIM (service $SVC)"
"$LAB" compute crash "$VICTIM"
rec evacuate-in-use "$CMV" POST "$NOVA/servers/$FIRST/action" '{"evacuate": {}}'
rec evacuate-on-shared-storage "$CMV" POST "$NOVA/servers/$FIRST/action" '{"evacuate": {"onSharedStorage": false}}'
rec force-down "$CMV" PUT "$NOVA/os-services/$SVC" '{"forced_down": true}'
rec disable "$CMV" PUT "$NOVA/os-services/$SVC" '{"status": "disabled", "disabled_reason": "haconf: fenced"}'
rec services-forced-down "$CMV" GET "$NOVA/os-services?binary=nova-compute"
rec evacuate-unknown-host "$CMV" POST "$NOVA/servers/$FIRST/action" '{"evacuate": {"host": "cmp9"}}'
rec evacuate-same-host "$CMV" POST "$NOVA/servers/$FIRST/action" "{\"evacuate\": {\"host\": \"$VICTIM\"}}"
rec evacuate-host "$CMV" POST "$NOVA/servers/$FIRST/action" "{\"evacuate\": {\"host\": \"$TARGET\"}}"
rec server-rebuilding "$CMV" GET "$NOVA/servers/$FIRST"
if [ -n "$STOPPED" ]; then
	rec evacuate-scheduler "$CMV" POST "$NOVA/servers/$STOPPED/action" '{"evacuate": {}}'
fi
if [ -n "$RACED" ]; then
	# Nova's evacuate checks no task_state: a second one is accepted while
	# the first runs, and the two race.
	rec evacuate-first "$CMV" POST "$NOVA/servers/$RACED/action" '{"evacuate": {}}'
	rec evacuate-again "$CMV" POST "$NOVA/servers/$RACED/action" '{"evacuate": {}}'
fi
if [ -x "$NOVATEST" ]; then
	log "TestNovaLab (evacuate the rest of $VICTIM)"
	HACONF_NOVA_LAB=1 HACONF_NOVA_LAB_EVACUATE="$VICTIM" "$NOVATEST" -test.run 'TestNovaLab$' -test.v >&2
else
	for id in $(servers | jq -r --arg h "$VICTIM" '.servers[] | select(.name | startswith("ha-")) | select(.["OS-EXT-SRV-ATTR:host"] == $h and .["OS-EXT-STS:task_state"] == null) | .id'); do
		[ "$id" = "$STOPPED" ] || call "$CMV" POST "$NOVA/servers/$id/action" '{"evacuate": {}}'
	done
fi
wait_settled "$VICTIM" 300
rec server-evacuated "$CMV" GET "$NOVA/servers/$FIRST"
if [ -n "$RACED" ]; then
	sleep 10
	rec server-evacuated-twice "$CMV" GET "$NOVA/servers/$RACED"
	rec migrations-evacuated-twice "$CMV" GET "$NOVA/os-migrations?instance_uuid=$RACED"
fi
[ -n "$STOPPED" ] && rec server-stopped-evacuated "$CMV" GET "$NOVA/servers/$STOPPED"
rec servers-on-host-evacuated "$CMV" GET "$NOVA/servers/detail?all_tenants=1&host=$VICTIM"
rec servers-on-target "$CMV" GET "$NOVA/servers/detail?all_tenants=1&host=$TARGET"
rec unforce-refused "$CMV" PUT "$NOVA/os-services/$SVC" '{"forced_down": false}'
rec usages-after "$PMV" GET "$PLACEMENT/resource_providers/$(jq -r --arg h "$VICTIM" '.resource_providers[] | select(.name == $h) | .uuid' "$OUT/resource-providers.json")/usages"

# --- Recovery: the host boots, cleans up, and may be forced up again --------
log "start $VICTIM"
"$LAB" compute start "$VICTIM"
for i in $(seq 60); do
	sleep 3
	rec unforce "$CMV" PUT "$NOVA/os-services/$SVC" '{"forced_down": false}'
	head -1 "$OUT/unforce.http" | grep -q ' 200' && { log "unforce accepted after $((i * 3))s"; break; }
done
rec enable "$CMV" PUT "$NOVA/os-services/$SVC" '{"status": "enabled"}'
rec services-recovered "$CMV" GET "$NOVA/os-services?binary=nova-compute"
log "done"
