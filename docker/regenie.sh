#!/bin/sh
# regenie with the shared libraries of the image it was built in (collected at /opt/regenie/lib).
# exec: regenie replaces this shell, so the worker's SIGTERM reaches regenie itself.
LD_LIBRARY_PATH=/opt/regenie/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export LD_LIBRARY_PATH
exec /opt/regenie/bin/regenie "$@"
