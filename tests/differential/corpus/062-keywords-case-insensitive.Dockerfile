from alpine as Build
Run echo a
rUn echo b
cOpY a b
Env A=1
onbuild run echo x
OnBuild Copy a b
HealthCheck cmd true
