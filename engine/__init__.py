"""RobustLab engine: everything the dashboard shows is computed here, and all of it runs from the CLI.

No module below this package imports streamlit.
"""

import os as _os

# OpenMP threads that spin while waiting are ruinous when the cores are shared (many small forward
# passes, as in attacks and attributions, ran 10-20x slower here); sleeping waits cost almost nothing
# when the machine is idle. Set before torch is first imported (any engine import comes first).
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
