FROM alpine
VOLUME /data
VOLUME /a /b
VOLUME ["/c", "/d"]
VOLUME ["/e"
VOLUME "/f g"
