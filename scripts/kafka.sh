#!/usr/bin/env bash
# Installs, starts, stops and checks a single-node Apache Kafka 4.x broker (KRaft, combined
# broker + controller on 127.0.0.1) for development and tests. Kafka and its runtime
# dependencies come from Maven Central through deploy/kafka/pom.xml.
#
#   scripts/kafka.sh install   resolve the jars into $RELEARN_KAFKA_HOME/lib (idempotent)
#   scripts/kafka.sh start     format storage if needed, start, wait until it answers metadata
#   scripts/kafka.sh stop      stop the broker by pid
#   scripts/kafka.sh status    exit 0 when the broker answers a metadata request
#
# Environment: RELEARN_KAFKA_HOME (default ~/.cache/relearn/kafka), RELEARN_KAFKA_PORT (9092),
# RELEARN_KAFKA_CONTROLLER_PORT (port + 1), RELEARN_KAFKA_DATA (default $HOME/data-$PORT),
# RELEARN_KAFKA_SASL_USER / RELEARN_KAFKA_SASL_PASSWORD (set both: the client listener is
# SASL_PLAINTEXT with the PLAIN mechanism and that one user; the controller stays plaintext),
# RELEARN_KAFKA_TLS=1 (the client listener is SSL, with a self-signed certificate for
# 127.0.0.1 made by keytool at the first start; clients trust $RELEARN_KAFKA_HOME/tls-$PORT/ca.pem;
# with the SASL variables too, the listener is SASL_SSL: PLAIN over TLS).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
home=${RELEARN_KAFKA_HOME:-$HOME/.cache/relearn/kafka}
port=${RELEARN_KAFKA_PORT:-9092}
cport=${RELEARN_KAFKA_CONTROLLER_PORT:-$((port + 1))}
data=${RELEARN_KAFKA_DATA:-$home/data-$port}
pidfile=$home/kafka-$port.pid
logfile=$home/kafka-$port.log
props=$home/server-$port.properties
sasl_user=${RELEARN_KAFKA_SASL_USER:-}
sasl_password=${RELEARN_KAFKA_SASL_PASSWORD:-}
tls=${RELEARN_KAFKA_TLS:-}
tlsdir=$home/tls-$port
tls_password=relearn-test-keystore
kcat_auth=()
if [ -n "$sasl_user" ]; then
  kcat_auth=(-X security.protocol=SASL_PLAINTEXT -X sasl.mechanisms=PLAIN
    -X "sasl.username=$sasl_user" -X "sasl.password=$sasl_password")
fi
if [ -n "$tls" ]; then
  if [ -n "$sasl_user" ]; then
    kcat_auth=(-X security.protocol=SASL_SSL -X sasl.mechanisms=PLAIN
      -X "sasl.username=$sasl_user" -X "sasl.password=$sasl_password"
      -X "ssl.ca.location=$tlsdir/ca.pem")
  else
    kcat_auth=(-X security.protocol=SSL -X "ssl.ca.location=$tlsdir/ca.pem")
  fi
fi

die() { echo "kafka.sh: $*" >&2; exit 1; }

need_kcat() {
  command -v kcat >/dev/null 2>&1 && return
  echo "kafka.sh: installing kcat (readiness checks)" >&2
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kcat >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kcat >/dev/null
  fi
  command -v kcat >/dev/null 2>&1 || die "kcat could not be installed"
}

install() {
  command -v java >/dev/null || die "java (17+) is required"
  command -v mvn >/dev/null || die "maven (mvn) is required"
  if [ -f "$home/lib/.complete" ] && cmp -s "$here/deploy/kafka/pom.xml" "$home/lib/.complete"; then
    return
  fi
  mkdir -p "$home"
  rm -rf "$home/lib"
  echo "kafka.sh: resolving Kafka from Maven Central into $home/lib" >&2
  mvn -B -q -f "$here/deploy/kafka/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$home/lib" \
    || die "Maven could not resolve org.apache.kafka:kafka_2.13 (see the output above)"
  ls "$home"/lib/kafka_2.13-*.jar >/dev/null 2>&1 || die "kafka_2.13 jar missing after resolution"
  cp "$here/deploy/kafka/pom.xml" "$home/lib/.complete"
}

java_run() {
  java -Xms256m -Xmx1g -XX:+UseG1GC \
    -Dlog4j2.configurationFile="$here/deploy/kafka/log4j2.properties" \
    -cp "$home/lib/*" "$@"
}

answers() { kcat -b "127.0.0.1:$port" "${kcat_auth[@]}" -L -m 3 >/dev/null 2>&1; }

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

start() {
  install
  need_kcat
  if running && answers; then echo "kafka.sh: already running on 127.0.0.1:$port"; return; fi
  mkdir -p "$data"
  local proto=PLAINTEXT
  [ -n "$sasl_user" ] && proto=SASL_PLAINTEXT
  [ -n "$tls" ] && proto=SSL
  [ -n "$tls" ] && [ -n "$sasl_user" ] && proto=SASL_SSL
  if [ -n "$tls" ] && [ ! -f "$tlsdir/ca.pem" ]; then
    mkdir -p "$tlsdir"
    rm -f "$tlsdir/broker.p12"
    keytool -genkeypair -alias broker -keyalg RSA -keysize 2048 -validity 3650 \
      -dname CN=127.0.0.1 -ext SAN=IP:127.0.0.1,DNS:localhost -storetype PKCS12 \
      -keystore "$tlsdir/broker.p12" -storepass "$tls_password" -keypass "$tls_password" >/dev/null 2>&1 \
      || die "keytool could not create the broker certificate"
    keytool -exportcert -rfc -alias broker -keystore "$tlsdir/broker.p12" \
      -storepass "$tls_password" -file "$tlsdir/ca.pem" >/dev/null 2>&1 \
      || die "keytool could not export the broker certificate"
    keytool -importcert -noprompt -alias broker -file "$tlsdir/ca.pem" -storetype PKCS12 \
      -keystore "$tlsdir/trust.p12" -storepass "$tls_password" >/dev/null 2>&1 \
      || die "keytool could not create the broker truststore"
  fi
  cat > "$props" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=$proto://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=$proto://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=$proto
listener.security.protocol.map=$proto:$proto,CONTROLLER:PLAINTEXT
log.dirs=$data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
message.max.bytes=10485760
PROPS
  if [ -n "$sasl_user" ]; then
    cat >> "$props" <<PROPS
sasl.enabled.mechanisms=PLAIN
sasl.mechanism.inter.broker.protocol=PLAIN
listener.name.${proto,,}.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="$sasl_user" password="$sasl_password" user_$sasl_user="$sasl_password";
PROPS
  fi
  if [ -n "$tls" ]; then
    cat >> "$props" <<PROPS
ssl.keystore.type=PKCS12
ssl.keystore.location=$tlsdir/broker.p12
ssl.keystore.password=$tls_password
ssl.key.password=$tls_password
ssl.truststore.type=PKCS12
ssl.truststore.location=$tlsdir/trust.p12
ssl.truststore.password=$tls_password
ssl.client.auth=none
PROPS
  fi
  if [ ! -f "$data/meta.properties" ]; then
    java_run kafka.tools.StorageTool format -t "$(java_run kafka.tools.StorageTool random-uuid)" \
      -c "$props" --ignore-formatted >>"$logfile" 2>&1 || die "storage format failed; see $logfile"
  fi
  nohup java -Xms256m -Xmx1g -XX:+UseG1GC \
    -Dlog4j2.configurationFile="$here/deploy/kafka/log4j2.properties" \
    -cp "$home/lib/*" kafka.Kafka "$props" >>"$logfile" 2>&1 &
  echo $! > "$pidfile"
  for _ in $(seq 1 120); do
    if answers; then echo "kafka.sh: broker ready on 127.0.0.1:$port (pid $(cat "$pidfile"))"; return; fi
    running || die "broker exited during start; last log lines:
$(tail -n 30 "$logfile")"
    sleep 0.5
  done
  die "broker did not answer a metadata request within 60 s; see $logfile"
}

stop() {
  if ! running; then echo "kafka.sh: not running"; rm -f "$pidfile"; return; fi
  pid=$(cat "$pidfile")
  kill "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; echo "kafka.sh: stopped"; return; }; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
  echo "kafka.sh: killed after 30 s"
}

status() {
  need_kcat
  if answers; then echo "kafka.sh: broker answers on 127.0.0.1:$port"; else echo "kafka.sh: no broker on 127.0.0.1:$port"; exit 1; fi
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
