"""The lab: the livestream.aws service on one Linux machine, with real parts for AWS.

moto stands in for the AWS API, systemd-nspawn machines for the instances, Linux
bridges and a router namespace for the VPC, pebble for Let's Encrypt.
"""
