#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Firecracker: give the VM a balloon with free page reporting before it
# boots (PUT /balloon; the body is samples/firecracker-balloon.json). Needs
# a Firecracker release with the balloon's "free_page_reporting" field.
#
#   samples/firecracker.sh /run/firecracker.socket
curl --unix-socket "$1" -sS -X PUT http://localhost/balloon \
	-H 'Content-Type: application/json' \
	--data @"$(dirname "$0")/firecracker-balloon.json"
