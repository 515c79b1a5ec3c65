FROM alpine
MAINTAINER John "Jack" Doe <john@example.com>
STOPSIGNAL SIGKILL
STOPSIGNAL   9  
USER app:app
USER "quoted user"
WORKDIR /path with spaces/and "quotes"
WORKDIR   /trim/me   
