FROM alpine
ENV K v w
ENV K2    spaced    out   
ENV K3	v	w
ENV K4 "quoted v" more
ENV K5 b= c=d
