# Runs at install time (cmake --install, and cpack through it), once per
# package: writes the systemd unit with the paths of the prefix being
# installed to and installs it, with the configuration file and an empty
# conf.d for its drop-ins.
#
# Paths are decided here, not when the build was configured, because the
# prefix is only known now: `cmake --install --prefix P` installs under P,
# and CPack installs every package with CMAKE_INSTALL_PREFIX set to
# CPACK_PACKAGING_INSTALL_PREFIX (/usr), whatever the build's prefix was. The
# configuration goes where GNUInstallDirs puts it for that prefix: /etc for
# /usr, /etc/opt/P for /opt/P, P/etc otherwise (or the build's
# CMAKE_INSTALL_SYSCONFDIR when it is absolute).
#
# Set by the caller (CMakeLists.txt): PKG, UNIT_IN (the unit template),
# CONF (the configuration file to install, or empty for none), UNITDIR, BINDIR and SYSCONFDIR
# (the build's CMAKE_INSTALL_BINDIR and CMAKE_INSTALL_SYSCONFDIR), OUT (a
# directory of the build tree for the generated unit). DESTDIR is honoured
# by file(INSTALL).

set(prefix "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "(.)/+$" "\\1" prefix "${prefix}")
if(IS_ABSOLUTE "${BINDIR}")
	set(CMAKE_INSTALL_FULL_BINDIR "${BINDIR}")
else()
	set(CMAKE_INSTALL_FULL_BINDIR "${prefix}/${BINDIR}")
endif()
if(IS_ABSOLUTE "${SYSCONFDIR}")
	set(CMAKE_INSTALL_FULL_SYSCONFDIR "${SYSCONFDIR}")
elseif(prefix STREQUAL "/usr")
	set(CMAKE_INSTALL_FULL_SYSCONFDIR "/etc")
elseif(prefix MATCHES "^/opt/")
	set(CMAKE_INSTALL_FULL_SYSCONFDIR "/etc${prefix}")
else()
	set(CMAKE_INSTALL_FULL_SYSCONFDIR "${prefix}/${SYSCONFDIR}")
endif()

configure_file("${UNIT_IN}" "${OUT}/${PKG}.service" @ONLY)
file(INSTALL "${OUT}/${PKG}.service" DESTINATION "${UNITDIR}")
# A unit without a configuration of its own (indicator-web reads the
# daemon's) leaves CONF empty: no file, no conf.d.
if(CONF)
	file(INSTALL "${CONF}" DESTINATION "${CMAKE_INSTALL_FULL_SYSCONFDIR}/${PKG}")
	# conf.d, empty, for the site's drop-ins (README, "Configuration").
	file(MAKE_DIRECTORY "${OUT}/conf.d")
	file(INSTALL "${OUT}/conf.d" DESTINATION "${CMAKE_INSTALL_FULL_SYSCONFDIR}/${PKG}")
endif()
