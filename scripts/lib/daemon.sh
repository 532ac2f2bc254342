# Helpers for the scripts that run the release daemon against a broker and time it
# (kafka-load.sh, kafka-delayed.sh, soak.sh). Sourced, not run.

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_ingested PID PORT N LOG: waits until the daemon PID (HTTP on PORT) has ingested N
# records (relearn_ingest_records_total), then prints the count and the records/s from its
# first record to the last. Fails, showing LOG, if the daemon exits first.
wait_ingested() {
  local pid=$1 port=$2 n=$3 log=$4 first="" first_t="" count=0 now
  while :; do
    sleep 0.5
    kill -0 "$pid" 2>/dev/null || { echo "the daemon exited; log:" >&2; cat "$log" >&2; return 1; }
    count=$(curl -s "127.0.0.1:$port/metrics" | awk '/^relearn_ingest_records_total /{print $2}')
    count=${count:-0}
    now=$(date +%s.%N)
    if [ -z "$first" ] && [ "${count%.*}" -gt 0 ]; then first=$count; first_t=$now; fi
    [ "${count%.*}" -ge "$n" ] && break
  done
  python3 -c "import sys; n,f,t0,t1=map(float,sys.argv[1:5]); print(int(n), f'{(n-f)/(t1-t0):,.0f}')" \
    "$count" "$first" "$first_t" "$now"
}
