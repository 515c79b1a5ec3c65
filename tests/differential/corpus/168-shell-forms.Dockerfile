FROM alpine
SHELL ["/bin/sh", "-c"]
SHELL ["powershell", "-Command", "$ErrorActionPreference = 'Stop';"]
SHELL /bin/bash -c
