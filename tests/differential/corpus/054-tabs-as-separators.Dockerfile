FROM	alpine	AS	base
RUN	echo	a	b
EXPOSE	80	443
ENV	A	B	C
LABEL	a=b	c=d
