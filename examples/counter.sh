#!/bin/sh
# Counts from 1 to 10, one message a second, then exits (the client sees close 1000 "exit 0").
#   wsdev examples/counter.sh
for i in 1 2 3 4 5 6 7 8 9 10; do
  echo "$i"
  sleep 1
done
