"""propdesk: trade CME futures on prop-firm accounts with a risk manager that protects the account.

See README.md for the commands and ``design/ARCHITECTURE.md`` (in ``../shared``) for the package map.
"""

__version__ = "0.1.0"
