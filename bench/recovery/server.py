"""The demo web.yaml's server as a plain program, for the supervisord side of bench/recovery.ts.

supervisord's [program] mode cannot pass a held socket, so this process binds 127.0.0.1:PORT itself
(SO_REUSEADDR, so a restart is not refused by the dead process's TIME_WAIT connections). The handler
and the response are the demo's, byte for byte.

    python3 server.py PORT
"""
import http.server
import socket
import socketserver
import sys


class Server(socketserver.TCPServer):
    allow_reuse_address = True
    # The held socket on the sockvisord side listens with the system maximum; so does this one.
    request_queue_size = socket.SOMAXCONN


class HTTPRequestHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'<marquee>It works!</marquee>'
        self.send_response(200)
        self.send_header('Content-Type', 'text/html')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == '__main__':
    Server(('127.0.0.1', int(sys.argv[1])), HTTPRequestHandler).serve_forever()
