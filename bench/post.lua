-- wrk script: POST a 1 KiB (1024-byte) body, for /echo.
wrk.method = "POST"
wrk.body = string.rep("x", 1024)
wrk.headers["Content-Type"] = "application/octet-stream"
