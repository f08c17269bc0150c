# The README's "API at a glance" as checks, for scripts/container/container-test.sh
# (sourced; it provides pass and fail). The same requests, in the same order, with curl
# and jq; two more tickets are opened so that the two-at-a-time list has a next page.
# shellcheck shell=bash

# http METHOD URL [curl arguments...]: sets STATUS, HEADERS and BODY.
http() {
  local method=$1 url=$2 dir
  shift 2
  dir=$(mktemp -d)
  STATUS=$(curl -sS -X "$method" -o "$dir/body" -D "$dir/headers" -w '%{http_code}' \
    --max-time 30 "$@" "$url" 2>"$dir/error") || STATUS="000 ($(cat "$dir/error"))"
  HEADERS=$(tr -d '\r' <"$dir/headers" 2>/dev/null)
  BODY=$(cat "$dir/body" 2>/dev/null)
  rm -rf "$dir"
}

# header NAME: the value of the last NAME header of the response (names in any case).
header() { sed -n "s/^$1:[[:space:]]*//Ip" <<<"$HEADERS" | tail -n1; }

# step NAME EXPECTED-STATUS [extra condition as a jq filter on the body that must be true]
step() {
  local name=$1 expected=$2 filter=${3:-}
  if [[ $STATUS != "$expected" ]]; then
    fail "$FLOW_LABEL: $name: status $STATUS, expected $expected; body: ${BODY:0:200}"
    return 1
  fi
  if [[ -n $filter ]] && ! jq -e "$filter" >/dev/null 2>&1 <<<"$BODY"; then
    fail "$FLOW_LABEL: $name: $expected, but the body fails $filter: ${BODY:0:200}"
    return 1
  fi
  pass "$FLOW_LABEL: $name ($STATUS)"
}

# readme_flow LABEL API STAFF_KEY: sets FLOW_TOKEN (the customer's) and FLOW_TICKET.
# shellcheck disable=SC2034 # FLOW_* are for the caller
readme_flow() {
  FLOW_LABEL=$1
  local api=$2 key=$3 jar staff location next
  jar=$(mktemp)
  FLOW_TOKEN="" FLOW_TICKET=""

  http POST "$api/users" --json '{"email":"ann@example.com","password":"correct horse","username":"ann"}'
  location=$(header location)
  step "register a customer, Location $location" 201 '.email == "ann@example.com"' || return 1
  http POST "$api/users" -H "Authorization: Bearer $key" \
    --json '{"email":"bob@example.com","password":"battery staple","username":"bob","isStaff":true}'
  step "register staff with the staff key" 201 || return 1

  http POST "$api/login" -c "$jar" --json '{"email":"ann@example.com","password":"correct horse"}'
  step "customer login (token cookie)" 200 '.token_type == "Bearer"' || return 1
  FLOW_TOKEN=$(jq -r .token <<<"$BODY")
  grep -q 'token' "$jar" || fail "$FLOW_LABEL: login set no token cookie"

  http POST "$api/tickets" -b "$jar" --json '{"topic":"Charged twice","text":"My card was charged twice for order 1234."}'
  step "open a ticket" 201 '.status == "pending" and .topic == "Charged twice"' || return 1
  FLOW_TICKET=$(jq -r .id <<<"$BODY")
  http POST "$api/tickets/$FLOW_TICKET/messages" -b "$jar" --json '{"text":"The second charge is from May 3."}'
  step "add a message" 201 || return 1

  http POST "$api/login" --json '{"email":"bob@example.com","password":"battery staple"}'
  step "staff login" 200 '.token | length > 0' || return 1
  staff=$(jq -r .token <<<"$BODY")
  http POST "$api/tickets/$FLOW_TICKET/messages" -H "Authorization: Bearer $staff" \
    --json '{"text":"Refunded, sorry about that."}'
  step "staff reply" 201 || return 1
  http PATCH "$api/tickets/$FLOW_TICKET" -H "Authorization: Bearer $staff" --json '{"status":"resolved"}'
  step "resolve the ticket" 200 '.status == "resolved"' || return 1

  # The first page of two needs a third ticket to have a next page.
  http POST "$api/tickets" -b "$jar" --json '{"topic":"Second","text":"Another one."}'
  http POST "$api/tickets" -b "$jar" --json '{"topic":"Third","text":"And another."}'
  step "open two more tickets" 201 || return 1
  http GET "$api/tickets?limit=2&status=pending,resolved&order=desc" -H "Authorization: Bearer $staff"
  next=$(header link | sed -n 's/^<\([^>]*\)>; rel="next".*/\1/p')
  step "list two at a time, Link: <${next:0:40}…>; rel=\"next\"" 200 'length == 2' || return 1
  if [[ -z $next ]]; then
    fail "$FLOW_LABEL: the first page has no Link rel=\"next\" header"
    return 1
  fi
  http GET "$api$next" -H "Authorization: Bearer $staff"
  step "follow the Link header to the last page" 200 'length == 1' || return 1
  rm -f "$jar"
}
