FROM alpine
COPY <<EOF /etc/config
key=value
EOF
ADD <<A <<B /dest/
first
A
second
B
COPY --chmod=755 <<"SCRIPT" /usr/local/bin/run
#!/bin/sh
echo $1
SCRIPT
