"""Local servers that speak a broker's API over the simulated exchange (``brokers/sim``): :mod:`projectx
<propdesk.emulators.projectx>`, the ProjectX Gateway API.
"""
