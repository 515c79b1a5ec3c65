FROM alpine
ENV A=1
ENV B=2 C=3 D=
ENV E="quoted value" F='single quoted' G=un\ quoted
ENV H=a"b c"d I=""
ENV =empty-key
