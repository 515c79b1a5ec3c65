FROM alpine
CMD     ["a"]
RUN		["b"]
ENTRYPOINT 	 [ "c" , "d" ]   
