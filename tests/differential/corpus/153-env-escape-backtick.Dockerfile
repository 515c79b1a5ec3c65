# escape=`
FROM alpine
ENV A=a`"b B="c`"d" C=e\f
LABEL x=y`  z=w
