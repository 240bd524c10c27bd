#!/bin/sh
# Greets each line it reads: the "hello world" of wsdev.
#   wsdev examples/greeter.sh
while read -r name; do
  echo "Hello, ${name}!"
done
