#!/bin/sh
cat /app/build-info.txt
echo "$GREETING"
