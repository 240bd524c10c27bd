#!/bin/sh
# Sends its environment, one variable a message: see what a program learns about its client.
#   wsdev examples/env.sh     then connect to ws://localhost:8080/some/path?x=1
env | sort
